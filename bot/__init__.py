"""The Gitea conversation: commands, authorization, reports, the Gitea client."""
