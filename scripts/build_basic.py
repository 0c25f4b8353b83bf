"""Build ``pipeline/suites/data/basic.jsonl``, the ``basic`` suite: short Python problems written for this project.

Why it exists: the embedded SmolLM2-135M-Instruct scores about 0 on HumanEval, so HumanEval cannot
show it moving. ``basic`` is graded so small models separate: ~60 easy one-liners, ~55 medium
(a loop or a condition), ~35 hard (a small algorithm). The problems are original (not taken from
MBPP, HumanEval or LiveCodeBench).

Each problem below is readable data: the function name, a difficulty, the statement (which names the
signature), a reference solution, one or two hand-written examples (shown in the prompt) and more
argument tuples. Expected outputs are computed by running the reference in a fresh ``python -I``
subprocess, so they are correct by construction; the hand-written examples are checked against the
reference, which catches a wrong reference. Tests are "call" kind: JSON argument lists in, JSON out,
so references return only JSON-native values (lists, not tuples; string dict keys), checked here.

Run ``python scripts/build_basic.py`` to rewrite the file; ``--check`` only verifies that the
committed file is what the script produces (the test suite does this too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "pipeline" / "suites" / "data" / "basic.jsonl"


@dataclass
class Spec:
    name: str
    difficulty: str
    statement: str
    reference: str
    examples: list[tuple[tuple, object]]
    cases: list[tuple] = field(default_factory=list)


PROBLEMS: list[Spec] = []


def c(*args: object) -> tuple:
    """One argument tuple: ``c("abc")`` is the single argument "abc"."""
    return args


def P(name: str, difficulty: str, statement: str, reference: str, examples: list, cases: list) -> None:  # noqa: N802
    PROBLEMS.append(Spec(name, difficulty, statement, textwrap.dedent(reference).strip() + "\n", examples, cases))


# ------------------------------------------------------------------------------------------------ easy

P(
    "add",
    "easy",
    "Write a Python function `add(a, b)` that returns the sum of the integers `a` and `b`.",
    """
  def add(a, b):
      return a + b
  """,
    [(c(2, 3), 5)],
    [c(0, 0), c(-7, 4), c(120, 880), c(-5, -6)],
)

P(
    "subtract",
    "easy",
    "Write a Python function `subtract(a, b)` that returns `a` minus `b`.",
    """
  def subtract(a, b):
      return a - b
  """,
    [(c(10, 4), 6)],
    [c(4, 10), c(0, 0), c(-3, -8), c(100, 1)],
)

P(
    "multiply",
    "easy",
    "Write a Python function `multiply(a, b)` that returns the product of the integers `a` and `b`.",
    """
  def multiply(a, b):
      return a * b
  """,
    [(c(3, 4), 12)],
    [c(0, 9), c(-2, 8), c(-3, -3), c(11, 11)],
)

P(
    "square",
    "easy",
    "Write a Python function `square(n)` that returns `n` multiplied by itself.",
    """
  def square(n):
      return n * n
  """,
    [(c(5), 25)],
    [c(0), c(-4), c(12), c(1)],
)

P(
    "cube",
    "easy",
    "Write a Python function `cube(n)` that returns the cube of the integer `n` (n to the power 3).",
    """
  def cube(n):
      return n ** 3
  """,
    [(c(2), 8)],
    [c(0), c(-3), c(10), c(1)],
)

P(
    "is_even",
    "easy",
    "Write a Python function `is_even(n)` that returns True if the integer `n` is even and False otherwise.",
    """
  def is_even(n):
      return n % 2 == 0
  """,
    [(c(4), True), (c(7), False)],
    [c(0), c(-2), c(-5), c(101)],
)

P(
    "is_odd",
    "easy",
    "Write a Python function `is_odd(n)` that returns True if the integer `n` is odd and False otherwise.",
    """
  def is_odd(n):
      return n % 2 != 0
  """,
    [(c(3), True)],
    [c(0), c(8), c(-7), c(-10), c(99)],
)

P(
    "absolute",
    "easy",
    "Write a Python function `absolute(n)` that returns the absolute value of the number `n`.",
    """
  def absolute(n):
      return abs(n)
  """,
    [(c(-6), 6)],
    [c(6), c(0), c(-150), c(3)],
)

P(
    "larger",
    "easy",
    "Write a Python function `larger(a, b)` that returns the larger of the two numbers `a` and `b`.",
    """
  def larger(a, b):
      return max(a, b)
  """,
    [(c(3, 9), 9)],
    [c(9, 3), c(-1, -8), c(5, 5), c(0, -2)],
)

P(
    "smallest_of_three",
    "easy",
    "Write a Python function `smallest_of_three(a, b, c)` that returns the smallest of the three numbers.",
    """
  def smallest_of_three(a, b, c):
      return min(a, b, c)
  """,
    [(c(4, 1, 7), 1)],
    [c(9, 8, 7), c(2, 5, 3), c(-1, -1, 0), c(6, 6, 6)],
)

P(
    "reverse_text",
    "easy",
    "Write a Python function `reverse_text(s)` that returns the string `s` reversed.",
    """
  def reverse_text(s):
      return s[::-1]
  """,
    [(c("abc"), "cba")],
    [c(""), c("racecar"), c("Hello, World"), c("ab")],
)

P(
    "text_length",
    "easy",
    "Write a Python function `text_length(s)` that returns the number of characters in the string `s`.",
    """
  def text_length(s):
      return len(s)
  """,
    [(c("hello"), 5)],
    [c(""), c("a b c"), c("0123456789")],
)

P(
    "first_item",
    "easy",
    "Write a Python function `first_item(items)` that returns the first element of the non-empty list `items`.",
    """
  def first_item(items):
      return items[0]
  """,
    [(c([7, 8, 9]), 7)],
    [c(["x"]), c([0, 1]), c([[1], [2]])],
)

P(
    "last_item",
    "easy",
    "Write a Python function `last_item(items)` that returns the last element of the non-empty list `items`.",
    """
  def last_item(items):
      return items[-1]
  """,
    [(c([7, 8, 9]), 9)],
    [c(["x"]), c([0, 1]), c(["a", "b", "c"])],
)

P(
    "total",
    "easy",
    "Write a Python function `total(numbers)` that returns the sum of a list of integers (0 for an empty list).",
    """
  def total(numbers):
      return sum(numbers)
  """,
    [(c([1, 2, 3]), 6)],
    [c([]), c([-5, 5]), c([10]), c([4, 4, 4, 4])],
)

P(
    "biggest",
    "easy",
    "Write a Python function `biggest(numbers)` that returns the largest number in the non-empty list `numbers`.",
    """
  def biggest(numbers):
      return max(numbers)
  """,
    [(c([3, 9, 2]), 9)],
    [c([-4, -2, -9]), c([5]), c([1, 1, 0]), c([0, 100, 99])],
)

P(
    "tiniest",
    "easy",
    "Write a Python function `tiniest(numbers)` that returns the smallest number in the non-empty list `numbers`.",
    """
  def tiniest(numbers):
      return min(numbers)
  """,
    [(c([3, 9, 2]), 2)],
    [c([-4, -2, -9]), c([5]), c([1, 1, 0]), c([100, 99])],
)

P(
    "count_items",
    "easy",
    "Write a Python function `count_items(items)` that returns how many elements the list `items` has.",
    """
  def count_items(items):
      return len(items)
  """,
    [(c([4, 5, 6]), 3)],
    [c([]), c(["a"]), c([0, 0, 0, 0, 0])],
)

P(
    "shout",
    "easy",
    "Write a Python function `shout(s)` that returns the string `s` with every letter in upper case.",
    """
  def shout(s):
      return s.upper()
  """,
    [(c("hey"), "HEY")],
    [c(""), c("Mixed Case 42"), c("ABC")],
)

P(
    "whisper",
    "easy",
    "Write a Python function `whisper(s)` that returns the string `s` with every letter in lower case.",
    """
  def whisper(s):
      return s.lower()
  """,
    [(c("HeY"), "hey")],
    [c(""), c("Mixed Case 42"), c("abc")],
)

P(
    "double_each",
    "easy",
    "Write a Python function `double_each(numbers)` that returns a new list with every number of `numbers` multiplied by 2.",
    """
  def double_each(numbers):
      return [2 * x for x in numbers]
  """,
    [(c([1, 2, 3]), [2, 4, 6])],
    [c([]), c([-1, 0]), c([50])],
)

P(
    "is_positive",
    "easy",
    "Write a Python function `is_positive(n)` that returns True if the number `n` is greater than zero, else False.",
    """
  def is_positive(n):
      return n > 0
  """,
    [(c(5), True), (c(0), False)],
    [c(-3), c(1), c(-1)],
)

P(
    "is_negative",
    "easy",
    "Write a Python function `is_negative(n)` that returns True if the number `n` is less than zero, else False.",
    """
  def is_negative(n):
      return n < 0
  """,
    [(c(-2), True), (c(0), False)],
    [c(3), c(-100), c(7)],
)

P(
    "join_two",
    "easy",
    "Write a Python function `join_two(a, b)` that returns the string `a` followed directly by the string `b`.",
    """
  def join_two(a, b):
      return a + b
  """,
    [(c("sun", "flower"), "sunflower")],
    [c("", "x"), c("a", ""), c("12", "34")],
)

P(
    "repeat_text",
    "easy",
    "Write a Python function `repeat_text(s, n)` that returns the string `s` repeated `n` times.",
    """
  def repeat_text(s, n):
      return s * n
  """,
    [(c("ab", 3), "ababab")],
    [c("x", 0), c("", 5), c("hi ", 2)],
)

P(
    "first_letter",
    "easy",
    "Write a Python function `first_letter(s)` that returns the first character of the non-empty string `s`.",
    """
  def first_letter(s):
      return s[0]
  """,
    [(c("python"), "p")],
    [c("Z"), c(" lead"), c("9 lives")],
)

P(
    "final_letter",
    "easy",
    "Write a Python function `final_letter(s)` that returns the last character of the non-empty string `s`.",
    """
  def final_letter(s):
      return s[-1]
  """,
    [(c("python"), "n")],
    [c("Z"), c("end."), c("ab")],
)

P(
    "mean",
    "easy",
    "Write a Python function `mean(numbers)` that returns the average of the non-empty list `numbers` as a float.",
    """
  def mean(numbers):
      return sum(numbers) / len(numbers)
  """,
    [(c([1, 2, 3]), 2.0)],
    [c([5]), c([2, 3]), c([-4, 4, 10, 2]), c([7, 8])],
)

P(
    "celsius_to_fahrenheit",
    "easy",
    "Write a Python function `celsius_to_fahrenheit(c)` that converts a temperature in Celsius to Fahrenheit "
    "using F = C * 9 / 5 + 32.",
    """
  def celsius_to_fahrenheit(c):
      return c * 9 / 5 + 32
  """,
    [(c(100), 212.0)],
    [c(0), c(-40), c(25), c(10)],
)

P(
    "divides",
    "easy",
    "Write a Python function `divides(a, b)` that returns True if the integer `a` is divisible by the non-zero "
    "integer `b` (no remainder), else False.",
    """
  def divides(a, b):
      return a % b == 0
  """,
    [(c(12, 4), True), (c(10, 3), False)],
    [c(0, 5), c(7, 7), c(9, 2), c(-6, 3)],
)

P(
    "leftover",
    "easy",
    "Write a Python function `leftover(a, b)` that returns the remainder of dividing the positive integer `a` by "
    "the positive integer `b`.",
    """
  def leftover(a, b):
      return a % b
  """,
    [(c(17, 5), 2)],
    [c(10, 5), c(3, 7), c(100, 9)],
)

P(
    "whole_divide",
    "easy",
    "Write a Python function `whole_divide(a, b)` that returns how many whole times the positive integer `b` fits "
    "into the non-negative integer `a` (integer division).",
    """
  def whole_divide(a, b):
      return a // b
  """,
    [(c(17, 5), 3)],
    [c(10, 5), c(3, 7), c(100, 9), c(0, 4)],
)

P(
    "has_item",
    "easy",
    "Write a Python function `has_item(items, x)` that returns True if `x` is an element of the list `items`, else False.",
    """
  def has_item(items, x):
      return x in items
  """,
    [(c([1, 2, 3], 2), True), (c([1, 2, 3], 5), False)],
    [c([], 1), c(["a", "b"], "b"), c([0], 0)],
)

P(
    "count_letter",
    "easy",
    "Write a Python function `count_letter(s, ch)` that returns how many times the character `ch` occurs in the "
    "string `s`.",
    """
  def count_letter(s, ch):
      return s.count(ch)
  """,
    [(c("banana", "a"), 3)],
    [c("banana", "z"), c("", "a"), c("Aa", "a"), c("mississippi", "s")],
)

P(
    "is_blank",
    "easy",
    "Write a Python function `is_blank(s)` that returns True if the string `s` is empty, else False.",
    """
  def is_blank(s):
      return len(s) == 0
  """,
    [(c(""), True), (c("a"), False)],
    [c(" "), c("word")],
)

P(
    "swap_pair",
    "easy",
    "Write a Python function `swap_pair(pair)` that takes a list of two elements and returns a new list with "
    "the two elements in the opposite order.",
    """
  def swap_pair(pair):
      return [pair[1], pair[0]]
  """,
    [(c([1, 2]), [2, 1])],
    [c(["a", "b"]), c([0, 0]), c([5, -5])],
)

P(
    "join_words",
    "easy",
    "Write a Python function `join_words(words)` that returns the strings of the list `words` joined with a "
    "single space between them.",
    """
  def join_words(words):
      return " ".join(words)
  """,
    [(c(["good", "day"]), "good day")],
    [c([]), c(["one"]), c(["a", "b", "c"])],
)

P(
    "split_words",
    "easy",
    "Write a Python function `split_words(s)` that returns the list of words in the string `s`, where words are "
    "separated by whitespace.",
    """
  def split_words(s):
      return s.split()
  """,
    [(c("red green blue"), ["red", "green", "blue"])],
    [c(""), c("  padded   words "), c("single")],
)

P(
    "squares",
    "easy",
    "Write a Python function `squares(numbers)` that returns a new list with the square of each number of `numbers`.",
    """
  def squares(numbers):
      return [x * x for x in numbers]
  """,
    [(c([1, 2, 3]), [1, 4, 9])],
    [c([]), c([-3, 0]), c([10])],
)

P(
    "rectangle_area",
    "easy",
    "Write a Python function `rectangle_area(width, height)` that returns the area of a rectangle.",
    """
  def rectangle_area(width, height):
      return width * height
  """,
    [(c(3, 4), 12)],
    [c(1, 1), c(0, 5), c(7, 6)],
)

P(
    "rectangle_perimeter",
    "easy",
    "Write a Python function `rectangle_perimeter(width, height)` that returns the perimeter of a rectangle.",
    """
  def rectangle_perimeter(width, height):
      return 2 * (width + height)
  """,
    [(c(3, 4), 14)],
    [c(1, 1), c(0, 5), c(10, 2)],
)

P(
    "begins_with",
    "easy",
    "Write a Python function `begins_with(s, prefix)` that returns True if the string `s` starts with the string "
    "`prefix`, else False.",
    """
  def begins_with(s, prefix):
      return s.startswith(prefix)
  """,
    [(c("football", "foot"), True)],
    [c("football", "ball"), c("abc", ""), c("ab", "abc"), c("Tea", "tea")],
)

P(
    "finishes_with",
    "easy",
    "Write a Python function `finishes_with(s, suffix)` that returns True if the string `s` ends with the string "
    "`suffix`, else False.",
    """
  def finishes_with(s, suffix):
      return s.endswith(suffix)
  """,
    [(c("football", "ball"), True)],
    [c("football", "foot"), c("abc", ""), c("bc", "abc"), c("teA", "a")],
)

P(
    "sorted_copy",
    "easy",
    "Write a Python function `sorted_copy(numbers)` that returns a new list with the numbers in ascending order.",
    """
  def sorted_copy(numbers):
      return sorted(numbers)
  """,
    [(c([3, 1, 2]), [1, 2, 3])],
    [c([]), c([5, -1, 5, 0]), c([1])],
)

P(
    "no_spaces",
    "easy",
    "Write a Python function `no_spaces(s)` that returns the string `s` with all space characters removed.",
    """
  def no_spaces(s):
      return s.replace(" ", "")
  """,
    [(c("a b c"), "abc")],
    [c(""), c("   "), c("nospace"), c(" lead and trail ")],
)

P(
    "reads_same_backwards",
    "easy",
    "Write a Python function `reads_same_backwards(s)` that returns True if the string `s` is the same when "
    "reversed, else False. Compare characters exactly (case matters).",
    """
  def reads_same_backwards(s):
      return s == s[::-1]
  """,
    [(c("level"), True), (c("hello"), False)],
    [c(""), c("Aa"), c("abba"), c("x")],
)

P(
    "as_text",
    "easy",
    "Write a Python function `as_text(n)` that returns the integer `n` converted to a string.",
    """
  def as_text(n):
      return str(n)
  """,
    [(c(42), "42")],
    [c(0), c(-7), c(1000)],
)

P(
    "as_number",
    "easy",
    "Write a Python function `as_number(s)` that converts a string of decimal digits (possibly with a leading "
    "minus sign) to an integer.",
    """
  def as_number(s):
      return int(s)
  """,
    [(c("42"), 42)],
    [c("0"), c("-15"), c("007")],
)

P(
    "halve",
    "easy",
    "Write a Python function `halve(n)` that returns the number `n` divided by 2 as a float.",
    """
  def halve(n):
      return n / 2
  """,
    [(c(5), 2.5)],
    [c(0), c(8), c(-3)],
)

P(
    "sign",
    "easy",
    "Write a Python function `sign(n)` that returns 1 if the number `n` is positive, -1 if it is negative and 0 "
    "if it is zero.",
    """
  def sign(n):
      if n > 0:
          return 1
      if n < 0:
          return -1
      return 0
  """,
    [(c(9), 1), (c(-2), -1)],
    [c(0), c(100), c(-1)],
)

P(
    "take",
    "easy",
    "Write a Python function `take(items, n)` that returns a list of the first `n` elements of `items` (all of "
    "them if the list is shorter).",
    """
  def take(items, n):
      return items[:n]
  """,
    [(c([1, 2, 3, 4], 2), [1, 2])],
    [c([1, 2], 5), c([], 3), c(["a", "b"], 0)],
)

P(
    "without_first",
    "easy",
    "Write a Python function `without_first(items)` that returns a list of all elements of `items` except the "
    "first one (an empty list stays empty).",
    """
  def without_first(items):
      return items[1:]
  """,
    [(c([1, 2, 3]), [2, 3])],
    [c([]), c([9]), c(["a", "b"])],
)

P(
    "distinct_count",
    "easy",
    "Write a Python function `distinct_count(items)` that returns how many different values the list `items` holds.",
    """
  def distinct_count(items):
      return len(set(items))
  """,
    [(c([1, 2, 2, 3]), 3)],
    [c([]), c([5, 5, 5]), c(["a", "b", "A"])],
)

P(
    "evens_only",
    "easy",
    "Write a Python function `evens_only(numbers)` that returns a list of the even numbers of `numbers`, in "
    "their original order.",
    """
  def evens_only(numbers):
      return [x for x in numbers if x % 2 == 0]
  """,
    [(c([1, 2, 3, 4]), [2, 4])],
    [c([]), c([1, 3]), c([0, -2, 7, 8])],
)

P(
    "spread",
    "easy",
    "Write a Python function `spread(numbers)` that returns the difference between the largest and the smallest "
    "number in the non-empty list `numbers`.",
    """
  def spread(numbers):
      return max(numbers) - min(numbers)
  """,
    [(c([4, 9, 1]), 8)],
    [c([5]), c([-3, 3]), c([2, 2, 2])],
)

P(
    "capitalize_first",
    "easy",
    "Write a Python function `capitalize_first(s)` that returns `s` with its first character in upper case and "
    "every other character left unchanged.",
    """
  def capitalize_first(s):
      return s[:1].upper() + s[1:]
  """,
    [(c("hello World"), "Hello World")],
    [c(""), c("a"), c("already Fine"), c("mIXED")],
)

P(
    "word_count",
    "easy",
    "Write a Python function `word_count(s)` that returns the number of whitespace-separated words in the string `s`.",
    """
  def word_count(s):
      return len(s.split())
  """,
    [(c("the quick fox"), 3)],
    [c(""), c("   "), c("one"), c(" spaced   out words ")],
)

P(
    "minutes_to_seconds",
    "easy",
    "Write a Python function `minutes_to_seconds(minutes)` that returns how many seconds are in `minutes` minutes.",
    """
  def minutes_to_seconds(minutes):
      return minutes * 60
  """,
    [(c(2), 120)],
    [c(0), c(1), c(45)],
)

P(
    "is_vowel",
    "easy",
    "Write a Python function `is_vowel(ch)` that returns True if the single character `ch` is one of the vowels "
    "a, e, i, o, u (upper or lower case), else False.",
    """
  def is_vowel(ch):
      return ch.lower() in "aeiou"
  """,
    [(c("e"), True), (c("b"), False)],
    [c("A"), c("U"), c("y"), c("z")],
)

P(
    "last_digit",
    "easy",
    "Write a Python function `last_digit(n)` that returns the last decimal digit of the integer `n` as an int "
    "(for negative `n`, the last digit of its absolute value).",
    """
  def last_digit(n):
      return abs(n) % 10
  """,
    [(c(1234), 4)],
    [c(0), c(7), c(-58), c(90)],
)

P(
    "midpoint",
    "easy",
    "Write a Python function `midpoint(a, b)` that returns the average of the two numbers `a` and `b` as a float.",
    """
  def midpoint(a, b):
      return (a + b) / 2
  """,
    [(c(2, 4), 3.0)],
    [c(1, 2), c(-5, 5), c(0, 0)],
)

P(
    "triple",
    "easy",
    "Write a Python function `triple(n)` that returns the number `n` multiplied by 3.",
    """
  def triple(n):
      return 3 * n
  """,
    [(c(4), 12)],
    [c(0), c(-2), c(33)],
)

P(
    "yes_or_no",
    "easy",
    'Write a Python function `yes_or_no(flag)` that returns the string "yes" if the boolean `flag` is True and '
    '"no" if it is False.',
    """
  def yes_or_no(flag):
      return "yes" if flag else "no"
  """,
    [(c(True), "yes")],
    [c(False)],
)

P(
    "greet",
    "easy",
    'Write a Python function `greet(name)` that returns the greeting "Hello, " followed by `name` and an '
    "exclamation mark.",
    """
  def greet(name):
      return "Hello, " + name + "!"
  """,
    [(c("Ada"), "Hello, Ada!")],
    [c(""), c("World"), c("Grace Hopper")],
)

P(
    "next_number",
    "easy",
    "Write a Python function `next_number(n)` that returns the integer that comes right after `n`.",
    """
  def next_number(n):
      return n + 1
  """,
    [(c(9), 10)],
    [c(0), c(-1), c(-50)],
)

P(
    "both_true",
    "easy",
    "Write a Python function `both_true(a, b)` that returns True only if both booleans `a` and `b` are True.",
    """
  def both_true(a, b):
      return a and b
  """,
    [(c(True, True), True), (c(True, False), False)],
    [c(False, True), c(False, False)],
)

# ---------------------------------------------------------------------------------------------- medium

P(
    "count_vowels",
    "medium",
    "Write a Python function `count_vowels(s)` that returns how many vowels (a, e, i, o, u, in either case) the "
    "string `s` contains.",
    """
  def count_vowels(s):
      return sum(1 for ch in s.lower() if ch in "aeiou")
  """,
    [(c("Education"), 5)],
    [c(""), c("rhythm"), c("AEIOU aeiou"), c("Programming")],
)

P(
    "factorial",
    "medium",
    "Write a Python function `factorial(n)` that returns n! (the product 1 * 2 * ... * n) for a non-negative "
    "integer `n`; factorial(0) is 1.",
    """
  def factorial(n):
      result = 1
      for k in range(2, n + 1):
          result *= k
      return result
  """,
    [(c(5), 120)],
    [c(0), c(1), c(10), c(3)],
)

P(
    "fibonacci",
    "medium",
    "Write a Python function `fibonacci(n)` that returns the n-th Fibonacci number, where fibonacci(0) is 0, "
    "fibonacci(1) is 1 and each later one is the sum of the two before it.",
    """
  def fibonacci(n):
      a, b = 0, 1
      for _ in range(n):
          a, b = b, a + b
      return a
  """,
    [(c(7), 13)],
    [c(0), c(1), c(2), c(20), c(30)],
)

P(
    "digit_sum",
    "medium",
    "Write a Python function `digit_sum(n)` that returns the sum of the decimal digits of the non-negative integer `n`.",
    """
  def digit_sum(n):
      return sum(int(d) for d in str(n))
  """,
    [(c(1234), 10)],
    [c(0), c(9), c(99999), c(1000)],
)

P(
    "is_prime",
    "medium",
    "Write a Python function `is_prime(n)` that returns True if the integer `n` is a prime number, else False. "
    "Numbers below 2 are not prime.",
    """
  def is_prime(n):
      if n < 2:
          return False
      k = 2
      while k * k <= n:
          if n % k == 0:
              return False
          k += 1
      return True
  """,
    [(c(7), True), (c(9), False)],
    [c(0), c(1), c(2), c(97), c(91), c(-7)],
)

P(
    "reverse_word_order",
    "medium",
    "Write a Python function `reverse_word_order(s)` that returns the words of `s` in reverse order, joined by "
    "single spaces. Words are separated by whitespace.",
    """
  def reverse_word_order(s):
      return " ".join(reversed(s.split()))
  """,
    [(c("one two three"), "three two one")],
    [c(""), c("solo"), c("  a   b  ")],
)

P(
    "count_positive",
    "medium",
    "Write a Python function `count_positive(numbers)` that returns how many numbers in the list are greater "
    "than zero.",
    """
  def count_positive(numbers):
      return sum(1 for x in numbers if x > 0)
  """,
    [(c([1, -2, 3, 0]), 2)],
    [c([]), c([-1, -1]), c([5, 5, 5])],
)

P(
    "second_largest",
    "medium",
    "Write a Python function `second_largest(numbers)` that returns the second largest distinct value in the "
    "list `numbers`, or None if there are fewer than two distinct values.",
    """
  def second_largest(numbers):
      values = sorted(set(numbers), reverse=True)
      return values[1] if len(values) >= 2 else None
  """,
    [(c([4, 1, 4, 3]), 3), (c([2, 2]), None)],
    [c([]), c([10, 20]), c([-1, -5, -3]), c([7, 7, 6, 6])],
)

P(
    "dedupe",
    "medium",
    "Write a Python function `dedupe(items)` that returns a list of the elements of `items` without repeats, "
    "keeping the first occurrence of each and the original order.",
    """
  def dedupe(items):
      seen = set()
      result = []
      for item in items:
          if item not in seen:
              seen.add(item)
              result.append(item)
      return result
  """,
    [(c([3, 1, 3, 2, 1]), [3, 1, 2])],
    [c([]), c(["b", "a", "b"]), c([5, 5, 5])],
)

P(
    "char_counts",
    "medium",
    "Write a Python function `char_counts(s)` that returns a dictionary mapping each character of the string `s` "
    "to the number of times it appears.",
    """
  def char_counts(s):
      counts = {}
      for ch in s:
          counts[ch] = counts.get(ch, 0) + 1
      return counts
  """,
    [(c("abca"), {"a": 2, "b": 1, "c": 1})],
    [c(""), c("zzz"), c("a b")],
)

P(
    "fizz_buzz_list",
    "medium",
    "Write a Python function `fizz_buzz_list(n)` that returns a list of strings for the numbers 1 to `n`: "
    '"Fizz" for multiples of 3, "Buzz" for multiples of 5, "FizzBuzz" for multiples of both, and the '
    "number itself as a string otherwise.",
    """
  def fizz_buzz_list(n):
      result = []
      for k in range(1, n + 1):
          if k % 15 == 0:
              result.append("FizzBuzz")
          elif k % 3 == 0:
              result.append("Fizz")
          elif k % 5 == 0:
              result.append("Buzz")
          else:
              result.append(str(k))
      return result
  """,
    [(c(5), ["1", "2", "Fizz", "4", "Buzz"])],
    [c(0), c(1), c(15)],
)

P(
    "greatest_common_divisor",
    "medium",
    "Write a Python function `greatest_common_divisor(a, b)` that returns the greatest common divisor of two "
    "positive integers.",
    """
  def greatest_common_divisor(a, b):
      while b:
          a, b = b, a % b
      return a
  """,
    [(c(12, 18), 6)],
    [c(7, 13), c(100, 10), c(1, 1), c(81, 27)],
)

P(
    "least_common_multiple",
    "medium",
    "Write a Python function `least_common_multiple(a, b)` that returns the smallest positive integer that is a "
    "multiple of both positive integers `a` and `b`.",
    """
  def least_common_multiple(a, b):
      x, y = a, b
      while y:
          x, y = y, x % y
      return a * b // x
  """,
    [(c(4, 6), 12)],
    [c(1, 9), c(7, 5), c(10, 10), c(12, 18)],
)

P(
    "is_non_decreasing",
    "medium",
    "Write a Python function `is_non_decreasing(numbers)` that returns True if every number in the list is "
    "greater than or equal to the one before it, else False.",
    """
  def is_non_decreasing(numbers):
      return all(a <= b for a, b in zip(numbers, numbers[1:]))
  """,
    [(c([1, 2, 2, 5]), True), (c([3, 1]), False)],
    [c([]), c([7]), c([1, 2, 3, 2])],
)

P(
    "merge_and_sort",
    "medium",
    "Write a Python function `merge_and_sort(a, b)` that returns one list with all numbers from the lists `a` and "
    "`b` in ascending order.",
    """
  def merge_and_sort(a, b):
      return sorted(a + b)
  """,
    [(c([1, 4], [2, 3]), [1, 2, 3, 4])],
    [c([], []), c([5], []), c([3, 3], [1, 3])],
)

P(
    "running_total",
    "medium",
    "Write a Python function `running_total(numbers)` that returns a list whose i-th element is the sum of the "
    "first i + 1 numbers of `numbers`.",
    """
  def running_total(numbers):
      result = []
      total = 0
      for x in numbers:
          total += x
          result.append(total)
      return result
  """,
    [(c([1, 2, 3]), [1, 3, 6])],
    [c([]), c([5]), c([2, -2, 2, -2])],
)

P(
    "count_capitals",
    "medium",
    "Write a Python function `count_capitals(s)` that returns how many upper-case letters the string `s` contains.",
    """
  def count_capitals(s):
      return sum(1 for ch in s if ch.isupper())
  """,
    [(c("Hello World"), 2)],
    [c(""), c("lower only"), c("ABC def GHI")],
)

P(
    "title_words",
    "medium",
    "Write a Python function `title_words(s)` that takes words separated by single spaces and returns them with "
    "the first letter of every word in upper case and the other letters in lower case.",
    """
  def title_words(s):
      return " ".join(word[:1].upper() + word[1:].lower() for word in s.split(" "))
  """,
    [(c("the gREAT gatsby"), "The Great Gatsby")],
    [c("a"), c("ONE TWO"), c("x y z")],
)

P(
    "digits_of",
    "medium",
    "Write a Python function `digits_of(n)` that returns the list of decimal digits of the non-negative integer "
    "`n`, most significant first.",
    """
  def digits_of(n):
      return [int(d) for d in str(n)]
  """,
    [(c(305), [3, 0, 5])],
    [c(0), c(7), c(123456)],
)

P(
    "digit_count",
    "medium",
    "Write a Python function `digit_count(n)` that returns how many decimal digits the integer `n` has, ignoring "
    "a minus sign; 0 has one digit.",
    """
  def digit_count(n):
      return len(str(abs(n)))
  """,
    [(c(-405), 3)],
    [c(0), c(9), c(10), c(1000000)],
)

P(
    "is_power_of_two",
    "medium",
    "Write a Python function `is_power_of_two(n)` that returns True if the integer `n` is a power of two "
    "(1, 2, 4, 8, ...), else False.",
    """
  def is_power_of_two(n):
      return n > 0 and n & (n - 1) == 0
  """,
    [(c(8), True), (c(6), False)],
    [c(1), c(0), c(-4), c(1024), c(1000)],
)

P(
    "longer_than",
    "medium",
    "Write a Python function `longer_than(words, k)` that returns a list of the words with more than `k` "
    "characters, in their original order.",
    """
  def longer_than(words, k):
      return [w for w in words if len(w) > k]
  """,
    [(c(["a", "abc", "ab"], 1), ["abc", "ab"])],
    [c([], 3), c(["short"], 5), c(["tiny", "enormous"], 4)],
)

P(
    "longest_word",
    "medium",
    "Write a Python function `longest_word(s)` that returns the longest whitespace-separated word in the "
    "non-empty string `s`; if several are equally long, return the first of them.",
    """
  def longest_word(s):
      best = ""
      for word in s.split():
          if len(word) > len(best):
              best = word
      return best
  """,
    [(c("I love programming"), "programming")],
    [c("one two six"), c("a"), c("ab cd efg hij")],
)

P(
    "position_of_max",
    "medium",
    "Write a Python function `position_of_max(numbers)` that returns the index of the largest number in the "
    "non-empty list; if it appears several times, the index of the first one.",
    """
  def position_of_max(numbers):
      best = 0
      for i, x in enumerate(numbers):
          if x > numbers[best]:
              best = i
      return best
  """,
    [(c([3, 8, 1, 8]), 1)],
    [c([5]), c([1, 2, 3]), c([-1, -2]), c([0, 0, 0])],
)

P(
    "product",
    "medium",
    "Write a Python function `product(numbers)` that returns the product of all numbers in the list (1 for an "
    "empty list).",
    """
  def product(numbers):
      result = 1
      for x in numbers:
          result *= x
      return result
  """,
    [(c([2, 3, 4]), 24)],
    [c([]), c([0, 5]), c([-1, -1, -1]), c([7])],
)

P(
    "every_other",
    "medium",
    "Write a Python function `every_other(items)` that returns the elements at even indices (0, 2, 4, ...) of "
    "the list `items`.",
    """
  def every_other(items):
      return items[::2]
  """,
    [(c([1, 2, 3, 4, 5]), [1, 3, 5])],
    [c([]), c(["a"]), c([1, 2])],
)

P(
    "rotate_left",
    "medium",
    "Write a Python function `rotate_left(items, k)` that moves the first `k` elements of the list to its end "
    "and returns the new list; `k` may be larger than the length, in which case rotate by `k` modulo the "
    "length. An empty list stays empty.",
    """
  def rotate_left(items, k):
      if not items:
          return []
      k %= len(items)
      return items[k:] + items[:k]
  """,
    [(c([1, 2, 3, 4], 1), [2, 3, 4, 1])],
    [c([1, 2, 3], 5), c([], 2), c([1, 2], 0), c([9, 8, 7], 3)],
)

P(
    "add_lists",
    "medium",
    "Write a Python function `add_lists(a, b)` that takes two lists of the same length and returns a list of "
    "the sums of their elements at each position.",
    """
  def add_lists(a, b):
      return [x + y for x, y in zip(a, b)]
  """,
    [(c([1, 2], [10, 20]), [11, 22])],
    [c([], []), c([-1], [1]), c([1, 1, 1], [2, 2, 2])],
)

P(
    "occurrences",
    "medium",
    "Write a Python function `occurrences(items, x)` that returns how many elements of the list `items` are "
    "equal to `x`, without using list.count.",
    """
  def occurrences(items, x):
      return sum(1 for item in items if item == x)
  """,
    [(c([1, 2, 1, 1], 1), 3)],
    [c([], 0), c(["a", "b"], "c"), c([0, 0], 0)],
)

P(
    "initials",
    "medium",
    "Write a Python function `initials(phrase)` that returns the first letter of every whitespace-separated "
    "word of `phrase`, in upper case, joined together.",
    """
  def initials(phrase):
      return "".join(word[0].upper() for word in phrase.split())
  """,
    [(c("portable network graphics"), "PNG")],
    [c(""), c("hello"), c("  as   soon as possible ")],
)

P(
    "same_letters",
    "medium",
    "Write a Python function `same_letters(a, b)` that returns True if the strings `a` and `b` use exactly the "
    "same letters the same number of times, ignoring case and spaces, else False.",
    """
  def same_letters(a, b):
      def key(s):
          return sorted(s.replace(" ", "").lower())
      return key(a) == key(b)
  """,
    [(c("Listen", "Silent"), True), (c("abc", "abd"), False)],
    [c("", ""), c("a gentleman", "elegant man"), c("aab", "abb")],
)

P(
    "clamp",
    "medium",
    "Write a Python function `clamp(x, low, high)` that returns `low` if `x` is below `low`, `high` if `x` is "
    "above `high`, and `x` otherwise (assume low <= high).",
    """
  def clamp(x, low, high):
      return max(low, min(x, high))
  """,
    [(c(15, 0, 10), 10)],
    [c(-5, 0, 10), c(5, 0, 10), c(3, 3, 3), c(0, -1, 1)],
)

P(
    "letter_grade",
    "medium",
    'Write a Python function `letter_grade(score)` that returns "A" for a score of 90 or more, "B" for 80 to '
    '89, "C" for 70 to 79, "D" for 60 to 69 and "F" below 60.',
    """
  def letter_grade(score):
      if score >= 90:
          return "A"
      if score >= 80:
          return "B"
      if score >= 70:
          return "C"
      if score >= 60:
          return "D"
      return "F"
  """,
    [(c(85), "B")],
    [c(90), c(100), c(79), c(60), c(59), c(0)],
)

P(
    "is_leap_year",
    "medium",
    "Write a Python function `is_leap_year(year)` that returns True if `year` is a leap year in the Gregorian "
    "calendar: divisible by 4, except years divisible by 100 unless they are also divisible by 400.",
    """
  def is_leap_year(year):
      return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
  """,
    [(c(2024), True), (c(1900), False)],
    [c(2000), c(2023), c(2100), c(1600)],
)

P(
    "sum_of_evens",
    "medium",
    "Write a Python function `sum_of_evens(numbers)` that returns the sum of the even numbers in the list.",
    """
  def sum_of_evens(numbers):
      return sum(x for x in numbers if x % 2 == 0)
  """,
    [(c([1, 2, 3, 4]), 6)],
    [c([]), c([1, 3, 5]), c([-2, 2, 10])],
)

P(
    "flatten_once",
    "medium",
    "Write a Python function `flatten_once(lists)` that takes a list of lists and returns one list with all "
    "their elements in order.",
    """
  def flatten_once(lists):
      return [x for inner in lists for x in inner]
  """,
    [(c([[1, 2], [3], []]), [1, 2, 3])],
    [c([]), c([[]]), c([["a"], ["b", "c"]])],
)

P(
    "chunked",
    "medium",
    "Write a Python function `chunked(items, size)` that splits the list into consecutive pieces of `size` "
    "elements (the last piece may be shorter) and returns the list of pieces.",
    """
  def chunked(items, size):
      return [items[i:i + size] for i in range(0, len(items), size)]
  """,
    [(c([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]])],
    [c([], 3), c([1, 2, 3], 3), c([1, 2, 3], 5)],
)

P(
    "pair_up",
    "medium",
    "Write a Python function `pair_up(keys, values)` that returns a dictionary mapping each string of `keys` to "
    "the element of `values` at the same position (the lists have the same length).",
    """
  def pair_up(keys, values):
      return dict(zip(keys, values))
  """,
    [(c(["a", "b"], [1, 2]), {"a": 1, "b": 2})],
    [c([], []), c(["x"], [[1, 2]]), c(["k", "k"], [1, 2])],
)

P(
    "swap_keys_values",
    "medium",
    "Write a Python function `swap_keys_values(mapping)` that takes a dictionary whose values are distinct "
    "strings and returns a new dictionary with keys and values exchanged.",
    """
  def swap_keys_values(mapping):
      return {value: key for key, value in mapping.items()}
  """,
    [(c({"a": "x", "b": "y"}), {"x": "a", "y": "b"})],
    [c({}), c({"one": "1"})],
)

P(
    "word_sizes",
    "medium",
    "Write a Python function `word_sizes(s)` that returns a list with the length of each whitespace-separated "
    "word of `s`, in order.",
    """
  def word_sizes(s):
      return [len(word) for word in s.split()]
  """,
    [(c("hi there you"), [2, 5, 3])],
    [c(""), c("a"), c("  spaced    out ")],
)

P(
    "mask_vowels",
    "medium",
    "Write a Python function `mask_vowels(s, ch)` that returns `s` with every vowel (a, e, i, o, u, either case) "
    "replaced by the character `ch`.",
    """
  def mask_vowels(s, ch):
      return "".join(ch if letter.lower() in "aeiou" else letter for letter in s)
  """,
    [(c("Banana", "*"), "B*n*n*")],
    [c("", "#"), c("xyz", "_"), c("AEIOU", "-")],
)

P(
    "count_overlapping",
    "medium",
    "Write a Python function `count_overlapping(s, sub)` that returns how many times the non-empty string `sub` "
    'occurs in `s`, counting overlapping occurrences ("aa" occurs 2 times in "aaa").',
    """
  def count_overlapping(s, sub):
      return sum(1 for i in range(len(s) - len(sub) + 1) if s[i:i + len(sub)] == sub)
  """,
    [(c("aaa", "aa"), 2)],
    [c("abababa", "aba"), c("", "a"), c("hello", "l"), c("abc", "abcd")],
)

P(
    "snake_to_camel",
    "medium",
    "Write a Python function `snake_to_camel(s)` that converts a lower-case snake_case name such as "
    '"make_it_work" to camelCase ("makeItWork").',
    """
  def snake_to_camel(s):
      first, *rest = s.split("_")
      return first + "".join(part.capitalize() for part in rest)
  """,
    [(c("make_it_work"), "makeItWork")],
    [c("single"), c("a_b"), c("html_to_text_v2")],
)

P(
    "camel_to_snake",
    "medium",
    'Write a Python function `camel_to_snake(s)` that converts a camelCase name such as "makeItWork" to '
    'snake_case ("make_it_work"): every upper-case letter becomes an underscore followed by its lower-case form.',
    """
  def camel_to_snake(s):
      return "".join("_" + ch.lower() if ch.isupper() else ch for ch in s)
  """,
    [(c("makeItWork"), "make_it_work")],
    [c("single"), c("aB"), c("parseHttpRequest")],
)

P(
    "drop_negatives",
    "medium",
    "Write a Python function `drop_negatives(numbers)` that returns a list of the numbers that are not negative, "
    "in their original order.",
    """
  def drop_negatives(numbers):
      return [x for x in numbers if x >= 0]
  """,
    [(c([3, -1, 0, -7, 2]), [3, 0, 2])],
    [c([]), c([-1, -2]), c([5])],
)

P(
    "longest_run_of_ones",
    "medium",
    "Write a Python function `longest_run_of_ones(bits)` that takes a list of 0s and 1s and returns the length of "
    "the longest stretch of consecutive 1s.",
    """
  def longest_run_of_ones(bits):
      best = current = 0
      for bit in bits:
          current = current + 1 if bit == 1 else 0
          best = max(best, current)
      return best
  """,
    [(c([1, 1, 0, 1, 1, 1, 0]), 3)],
    [c([]), c([0, 0]), c([1]), c([1, 0, 1, 0, 1, 1])],
)

P(
    "triangle_kind",
    "medium",
    'Write a Python function `triangle_kind(a, b, c)` that returns "invalid" if the three positive side '
    'lengths cannot form a triangle (one side is at least the sum of the other two), otherwise "equilateral" '
    'if all sides are equal, "isosceles" if exactly two are equal, and "scalene" if none are.',
    """
  def triangle_kind(a, b, c):
      x, y, z = sorted([a, b, c])
      if x + y <= z:
          return "invalid"
      if x == z:
          return "equilateral"
      if x == y or y == z:
          return "isosceles"
      return "scalene"
  """,
    [(c(3, 4, 5), "scalene"), (c(1, 2, 3), "invalid")],
    [c(2, 2, 2), c(5, 5, 8), c(8, 5, 5), c(1, 1, 5), c(7, 10, 5)],
)

P(
    "to_binary",
    "medium",
    "Write a Python function `to_binary(n)` that returns the binary representation of the non-negative integer "
    "`n` as a string of 0s and 1s without any prefix.",
    """
  def to_binary(n):
      return format(n, "b")
  """,
    [(c(6), "110")],
    [c(0), c(1), c(255), c(1024)],
)

P(
    "from_binary",
    "medium",
    "Write a Python function `from_binary(bits)` that converts a non-empty string of 0s and 1s to the integer it "
    "represents in base 2.",
    """
  def from_binary(bits):
      return int(bits, 2)
  """,
    [(c("110"), 6)],
    [c("0"), c("1"), c("11111111"), c("0010")],
)

P(
    "digital_root",
    "medium",
    "Write a Python function `digital_root(n)` that repeatedly replaces the non-negative integer `n` by the sum "
    "of its digits until a single digit remains, and returns that digit.",
    """
  def digital_root(n):
      while n >= 10:
          n = sum(int(d) for d in str(n))
      return n
  """,
    [(c(942), 6)],
    [c(0), c(5), c(99), c(123456789)],
)

P(
    "collatz_steps",
    "medium",
    "Write a Python function `collatz_steps(n)` that counts how many steps it takes a positive integer `n` to "
    "reach 1, where each step halves an even number and turns an odd number into 3 * n + 1.",
    """
  def collatz_steps(n):
      steps = 0
      while n != 1:
          n = n // 2 if n % 2 == 0 else 3 * n + 1
          steps += 1
      return steps
  """,
    [(c(6), 8)],
    [c(1), c(2), c(7), c(27)],
)

P(
    "sum_of_multiples",
    "medium",
    "Write a Python function `sum_of_multiples(limit)` that returns the sum of all positive integers below "
    "`limit` that are divisible by 4 or by 7.",
    """
  def sum_of_multiples(limit):
      return sum(k for k in range(1, limit) if k % 4 == 0 or k % 7 == 0)
  """,
    [(c(15), 45)],
    [c(1), c(8), c(29), c(100)],
)

P(
    "is_perfect_square",
    "medium",
    "Write a Python function `is_perfect_square(n)` that returns True if the integer `n` is the square of an "
    "integer, else False (negative numbers are not).",
    """
  def is_perfect_square(n):
      if n < 0:
          return False
      root = int(n ** 0.5)
      while root * root > n:
          root -= 1
      while (root + 1) * (root + 1) <= n:
          root += 1
      return root * root == n
  """,
    [(c(49), True), (c(50), False)],
    [c(0), c(1), c(-4), c(1000000), c(999999)],
)

P(
    "median",
    "medium",
    "Write a Python function `median(numbers)` that returns the median of the non-empty list as a float: the "
    "middle value after sorting, or the average of the two middle values when the length is even.",
    """
  def median(numbers):
      values = sorted(numbers)
      mid = len(values) // 2
      if len(values) % 2:
          return float(values[mid])
      return (values[mid - 1] + values[mid]) / 2
  """,
    [(c([3, 1, 2]), 2.0), (c([4, 1, 3, 2]), 2.5)],
    [c([7]), c([5, 5]), c([10, -10, 0, 3, 8])],
)

P(
    "strip_punctuation",
    "medium",
    "Write a Python function `strip_punctuation(s)` that returns `s` without any of the punctuation characters "
    "in Python's `string.punctuation`.",
    """
  import string

  def strip_punctuation(s):
      return "".join(ch for ch in s if ch not in string.punctuation)
  """,
    [(c("Hi, there!"), "Hi there")],
    [c(""), c("no punctuation"), c("a.b-c_d(e)")],
)

P(
    "mirrored",
    "medium",
    "Write a Python function `mirrored(items)` that returns the list followed by its elements in reverse order.",
    """
  def mirrored(items):
      return items + items[::-1]
  """,
    [(c([1, 2, 3]), [1, 2, 3, 3, 2, 1])],
    [c([]), c(["a"]), c([1, 2])],
)

P(
    "distinct_words",
    "medium",
    "Write a Python function `distinct_words(s)` that returns how many different whitespace-separated words the "
    "string `s` contains, ignoring case.",
    """
  def distinct_words(s):
      return len({word.lower() for word in s.split()})
  """,
    [(c("The cat and the hat"), 4)],
    [c(""), c("a A a"), c("one two three")],
)

P(
    "shorten",
    "medium",
    "Write a Python function `shorten(s, n)` that returns `s` unchanged if it has at most `n` characters, and "
    'otherwise its first `n` characters followed by "...".',
    """
  def shorten(s, n):
      return s if len(s) <= n else s[:n] + "..."
  """,
    [(c("abcdef", 3), "abc..."), (c("abc", 3), "abc")],
    [c("", 0), c("hello world", 5), c("hi", 10)],
)

P(
    "count_in_range",
    "medium",
    "Write a Python function `count_in_range(numbers, low, high)` that returns how many numbers of the list lie "
    "between `low` and `high`, both included.",
    """
  def count_in_range(numbers, low, high):
      return sum(1 for x in numbers if low <= x <= high)
  """,
    [(c([1, 5, 10, 15], 5, 10), 2)],
    [c([], 0, 1), c([3, 3, 3], 3, 3), c([-5, 0, 5], -1, 1)],
)

P(
    "alternate_case",
    "medium",
    "Write a Python function `alternate_case(s)` that returns `s` with the characters at even indices in upper "
    "case and those at odd indices in lower case.",
    """
  def alternate_case(s):
      return "".join(ch.upper() if i % 2 == 0 else ch.lower() for i, ch in enumerate(s))
  """,
    [(c("python"), "PyThOn")],
    [c(""), c("A"), c("HELLO world")],
)

P(
    "sum_of_squares_to",
    "medium",
    "Write a Python function `sum_of_squares_to(n)` that returns 1*1 + 2*2 + ... + n*n for a non-negative "
    "integer `n` (0 when `n` is 0).",
    """
  def sum_of_squares_to(n):
      return sum(k * k for k in range(1, n + 1))
  """,
    [(c(3), 14)],
    [c(0), c(1), c(10)],
)

P(
    "common_elements",
    "medium",
    "Write a Python function `common_elements(a, b)` that returns a sorted list of the distinct values that "
    "appear in both lists.",
    """
  def common_elements(a, b):
      return sorted(set(a) & set(b))
  """,
    [(c([1, 2, 3, 2], [2, 3, 4]), [2, 3])],
    [c([], [1]), c([5, 5], [5]), c([1, 2], [3, 4])],
)

# ------------------------------------------------------------------------------------------------ hard

P(
    "run_length_encode",
    "hard",
    "Write a Python function `run_length_encode(s)` that compresses runs of the same character: each run becomes "
    'the character followed by the length of the run, e.g. "aaabcc" becomes "a3b1c2".',
    """
  def run_length_encode(s):
      out = []
      i = 0
      while i < len(s):
          j = i
          while j < len(s) and s[j] == s[i]:
              j += 1
          out.append(s[i] + str(j - i))
          i = j
      return "".join(out)
  """,
    [(c("aaabcc"), "a3b1c2")],
    [c(""), c("x"), c("abab"), c("zzzzzzzzzzzz")],
)

P(
    "run_length_decode",
    "hard",
    "Write a Python function `run_length_decode(s)` that reverses run-length encoding: the input is letters each "
    'followed by a count of one or more digits, e.g. "a3b1c12"; return the expanded string.',
    """
  def run_length_decode(s):
      out = []
      i = 0
      while i < len(s):
          letter = s[i]
          j = i + 1
          while j < len(s) and s[j].isdigit():
              j += 1
          out.append(letter * int(s[i + 1:j]))
          i = j
      return "".join(out)
  """,
    [(c("a3b1"), "aaab")],
    [c(""), c("x1"), c("a10"), c("q2w2e2")],
)

P(
    "roman_to_int",
    "hard",
    "Write a Python function `roman_to_int(s)` that converts a valid Roman numeral (I, V, X, L, C, D, M, using "
    "subtractive forms such as IV and CM) to an integer.",
    """
  def roman_to_int(s):
      values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
      total = 0
      for i, ch in enumerate(s):
          value = values[ch]
          if i + 1 < len(s) and values[s[i + 1]] > value:
              total -= value
          else:
              total += value
      return total
  """,
    [(c("XIV"), 14)],
    [c("I"), c("MCMXCIV"), c("LVIII"), c("MMMCMXCIX"), c("CD")],
)

P(
    "int_to_roman",
    "hard",
    "Write a Python function `int_to_roman(n)` that converts an integer from 1 to 3999 to a Roman numeral "
    "string, using subtractive forms (4 is IV, 9 is IX, 40 is XL, 90 is XC, 400 is CD, 900 is CM).",
    """
  def int_to_roman(n):
      table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
               (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
      out = []
      for value, symbol in table:
          while n >= value:
              out.append(symbol)
              n -= value
      return "".join(out)
  """,
    [(c(14), "XIV")],
    [c(1), c(1994), c(58), c(3999), c(400)],
)

P(
    "brackets_balanced",
    "hard",
    "Write a Python function `brackets_balanced(s)` that returns True if every bracket in `s` ((), [] and {}) is "
    "closed by the matching bracket in the right order, ignoring all other characters, else False.",
    """
  def brackets_balanced(s):
      pairs = {")": "(", "]": "[", "}": "{"}
      stack = []
      for ch in s:
          if ch in "([{":
              stack.append(ch)
          elif ch in pairs:
              if not stack or stack.pop() != pairs[ch]:
                  return False
      return not stack
  """,
    [(c("a(b[c]{d})"), True), (c("(]"), False)],
    [c(""), c("(("), c("())"), c("{[()()]}"), c("([)]")],
)

P(
    "shared_prefix",
    "hard",
    "Write a Python function `shared_prefix(words)` that returns the longest string that every word of the list "
    'starts with ("" for an empty list or when there is none).',
    """
  def shared_prefix(words):
      if not words:
          return ""
      prefix = words[0]
      for word in words[1:]:
          while not word.startswith(prefix):
              prefix = prefix[:-1]
      return prefix
  """,
    [(c(["interview", "internet", "interval"]), "inter")],
    [c([]), c(["alone"]), c(["dog", "cat"]), c(["same", "same"]), c(["ab", "a", "abc"])],
)

P(
    "primes_up_to",
    "hard",
    "Write a Python function `primes_up_to(n)` that returns the list of all prime numbers less than or equal "
    "to `n`, in increasing order.",
    """
  def primes_up_to(n):
      if n < 2:
          return []
      sieve = [True] * (n + 1)
      sieve[0] = sieve[1] = False
      for k in range(2, int(n ** 0.5) + 1):
          if sieve[k]:
              for m in range(k * k, n + 1, k):
                  sieve[m] = False
      return [k for k, is_p in enumerate(sieve) if is_p]
  """,
    [(c(10), [2, 3, 5, 7])],
    [c(1), c(2), c(30), c(0)],
)

P(
    "prime_factors",
    "hard",
    "Write a Python function `prime_factors(n)` that returns the prime factors of the integer `n` >= 2 in "
    "increasing order, repeated as often as they divide `n` (prime_factors(12) is [2, 2, 3]).",
    """
  def prime_factors(n):
      factors = []
      k = 2
      while k * k <= n:
          while n % k == 0:
              factors.append(k)
              n //= k
          k += 1
      if n > 1:
          factors.append(n)
      return factors
  """,
    [(c(12), [2, 2, 3])],
    [c(2), c(97), c(360), c(1001), c(1024)],
)

P(
    "pair_with_sum",
    "hard",
    "Write a Python function `pair_with_sum(numbers, target)` that returns the indices [i, j] with i < j of two "
    "numbers in the list that add up to `target`. If several pairs do, return the one with the smallest j, and "
    "among those the smallest i. Return None if there is no such pair.",
    """
  def pair_with_sum(numbers, target):
      for j in range(len(numbers)):
          for i in range(j):
              if numbers[i] + numbers[j] == target:
                  return [i, j]
      return None
  """,
    [(c([2, 7, 11, 15], 9), [0, 1])],
    [c([1, 2, 3], 7), c([3, 3], 6), c([1, 4, 2, 3], 5), c([], 0), c([5, 1, 5], 10)],
)

P(
    "longest_rising_stretch",
    "hard",
    "Write a Python function `longest_rising_stretch(numbers)` that returns the length of the longest run of "
    "consecutive elements in which each is strictly greater than the one before (0 for an empty list).",
    """
  def longest_rising_stretch(numbers):
      if not numbers:
          return 0
      best = current = 1
      for a, b in zip(numbers, numbers[1:]):
          current = current + 1 if b > a else 1
          best = max(best, current)
      return best
  """,
    [(c([1, 2, 2, 3, 4, 5, 1]), 4)],
    [c([]), c([5]), c([3, 2, 1]), c([1, 2, 3])],
)

P(
    "transpose",
    "hard",
    "Write a Python function `transpose(matrix)` that returns the transpose of a rectangular matrix given as a "
    "non-empty list of equal-length rows: row i of the result is column i of the input.",
    """
  def transpose(matrix):
      return [list(column) for column in zip(*matrix)]
  """,
    [(c([[1, 2, 3], [4, 5, 6]]), [[1, 4], [2, 5], [3, 6]])],
    [c([[1]]), c([[1, 2]]), c([[1], [2], [3]])],
)

P(
    "matrix_product",
    "hard",
    "Write a Python function `matrix_product(a, b)` that returns the matrix product of `a` (n x m) and `b` "
    "(m x p), both given as lists of rows.",
    """
  def matrix_product(a, b):
      return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]
  """,
    [(c([[1, 2], [3, 4]], [[5, 6], [7, 8]]), [[19, 22], [43, 50]])],
    [c([[2]], [[3]]), c([[1, 2, 3]], [[1], [2], [3]]), c([[1], [2]], [[3, 4]])],
)

P(
    "spiral_order",
    "hard",
    "Write a Python function `spiral_order(matrix)` that returns the elements of a rectangular matrix (a list of "
    "rows) in clockwise spiral order, starting at the top-left corner.",
    """
  def spiral_order(matrix):
      result = []
      rows = [list(row) for row in matrix]
      while rows:
          result.extend(rows.pop(0))
          rows = [list(row) for row in zip(*rows)][::-1]
      return result
  """,
    [(c([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), [1, 2, 3, 6, 9, 8, 7, 4, 5])],
    [c([]), c([[1]]), c([[1, 2], [3, 4]]), c([[1, 2, 3, 4], [5, 6, 7, 8]]), c([[1], [2], [3]])],
)

P(
    "top_words",
    "hard",
    "Write a Python function `top_words(text, k)` that returns the `k` most frequent lower-cased "
    "whitespace-separated words of `text` as a list of [word, count] pairs, most frequent first; ties are "
    "broken alphabetically.",
    """
  def top_words(text, k):
      counts = {}
      for word in text.lower().split():
          counts[word] = counts.get(word, 0) + 1
      ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
      return [[word, count] for word, count in ranked[:k]]
  """,
    [(c("b a b c a b", 2), [["b", 3], ["a", 2]])],
    [c("", 3), c("x y z", 2), c("The the THE cat", 5)],
)

P(
    "shift_letters",
    "hard",
    "Write a Python function `shift_letters(s, shift)` that moves every ASCII letter of `s` `shift` places along "
    "the alphabet, wrapping from z to a and keeping its case; other characters are unchanged and `shift` may "
    "be negative or larger than 26.",
    """
  def shift_letters(s, shift):
      out = []
      for ch in s:
          if "a" <= ch <= "z":
              out.append(chr((ord(ch) - 97 + shift) % 26 + 97))
          elif "A" <= ch <= "Z":
              out.append(chr((ord(ch) - 65 + shift) % 26 + 65))
          else:
              out.append(ch)
      return "".join(out)
  """,
    [(c("abc", 1), "bcd"), (c("Zz", 2), "Bb")],
    [c("Hello, World!", 3), c("abc", -1), c("xyz", 52), c("", 5)],
)

P(
    "is_ipv4_address",
    "hard",
    "Write a Python function `is_ipv4_address(s)` that returns True if `s` is four decimal numbers from 0 to 255 "
    'separated by dots, with no leading zeros ("0" itself is fine) and nothing else, else False.',
    """
  def is_ipv4_address(s):
      parts = s.split(".")
      if len(parts) != 4:
          return False
      for part in parts:
          if not part.isdigit() or not part.isascii():
              return False
          if len(part) > 1 and part[0] == "0":
              return False
          if int(part) > 255:
              return False
      return True
  """,
    [(c("192.168.0.1"), True), (c("256.1.1.1"), False)],
    [c("0.0.0.0"), c("01.2.3.4"), c("1.2.3"), c("1.2.3.4.5"), c("a.b.c.d"), c("1..2.3"), c("255.255.255.255")],
)

P(
    "flatten_all",
    "hard",
    "Write a Python function `flatten_all(nested)` that takes a list whose elements are numbers or further lists "
    "(nested to any depth) and returns a flat list of all the numbers in order.",
    """
  def flatten_all(nested):
      result = []
      for item in nested:
          if isinstance(item, list):
              result.extend(flatten_all(item))
          else:
              result.append(item)
      return result
  """,
    [(c([1, [2, [3, [4]]], 5]), [1, 2, 3, 4, 5])],
    [c([]), c([[[]]]), c([[1, 2], [3]]), c([7])],
)

P(
    "anagram_groups",
    "hard",
    "Write a Python function `anagram_groups(words)` that groups words that are anagrams of each other. Each "
    "group is sorted alphabetically, and the groups are ordered by their first word.",
    """
  def anagram_groups(words):
      groups = {}
      for word in words:
          groups.setdefault("".join(sorted(word)), []).append(word)
      return sorted(sorted(group) for group in groups.values())
  """,
    [(c(["tea", "eat", "bat", "tab", "ate"]), [["ate", "eat", "tea"], ["bat", "tab"]])],
    [c([]), c(["solo"]), c(["ab", "ba", "abc", "cab", "x"])],
)

P(
    "longest_palindrome",
    "hard",
    "Write a Python function `longest_palindrome(s)` that returns the longest substring of `s` that reads the "
    "same backwards; if there are several of the same length, return the one that starts first.",
    """
  def longest_palindrome(s):
      best = ""
      for i in range(len(s)):
          for j in range(i + len(best) + 1, len(s) + 1):
              piece = s[i:j]
              if piece == piece[::-1]:
                  best = piece
      return best
  """,
    [(c("babad"), "bab")],
    [c(""), c("a"), c("cbbd"), c("forgeeksskeegfor"), c("abc")],
)

P(
    "edit_distance",
    "hard",
    "Write a Python function `edit_distance(a, b)` that returns the minimum number of single-character "
    "insertions, deletions or substitutions needed to turn string `a` into string `b`.",
    """
  def edit_distance(a, b):
      previous = list(range(len(b) + 1))
      for i, ca in enumerate(a, 1):
          current = [i]
          for j, cb in enumerate(b, 1):
              current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
          previous = current
      return previous[-1]
  """,
    [(c("kitten", "sitting"), 3)],
    [c("", ""), c("abc", ""), c("", "ab"), c("flaw", "lawn"), c("same", "same")],
)

P(
    "longest_increasing_subsequence",
    "hard",
    "Write a Python function `longest_increasing_subsequence(numbers)` that returns the length of the longest "
    "strictly increasing subsequence (not necessarily contiguous) of the list.",
    """
  def longest_increasing_subsequence(numbers):
      best = [1] * len(numbers)
      for j in range(len(numbers)):
          for i in range(j):
              if numbers[i] < numbers[j]:
                  best[j] = max(best[j], best[i] + 1)
      return max(best, default=0)
  """,
    [(c([10, 9, 2, 5, 3, 7, 101, 18]), 4)],
    [c([]), c([5]), c([3, 3, 3]), c([1, 2, 3, 4]), c([4, 3, 2, 1, 5])],
)

P(
    "fewest_coins",
    "hard",
    "Write a Python function `fewest_coins(coins, amount)` that returns the smallest number of coins with values "
    "from the list `coins` (each usable any number of times) that add up to `amount`, or -1 if it cannot be done.",
    """
  def fewest_coins(coins, amount):
      best = [0] + [None] * amount
      for value in range(1, amount + 1):
          options = [best[value - coin] for coin in coins if coin <= value and best[value - coin] is not None]
          best[value] = min(options) + 1 if options else None
      return -1 if best[amount] is None else best[amount]
  """,
    [(c([1, 2, 5], 11), 3), (c([2], 3), -1)],
    [c([1], 0), c([3, 7], 20), c([5, 10], 3), c([1, 5, 6, 9], 11)],
)

P(
    "pascal_row",
    "hard",
    "Write a Python function `pascal_row(n)` that returns row `n` of Pascal's triangle as a list, counting rows "
    "from 0 (row 0 is [1], row 2 is [1, 2, 1]).",
    """
  def pascal_row(n):
      row = [1]
      for _ in range(n):
          row = [a + b for a, b in zip([0] + row, row + [0])]
      return row
  """,
    [(c(2), [1, 2, 1])],
    [c(0), c(1), c(5), c(10)],
)

P(
    "find_sorted",
    "hard",
    "Write a Python function `find_sorted(numbers, target)` that returns the index of `target` in the list of "
    "distinct numbers sorted in ascending order, or -1 if it is absent. Use binary search.",
    """
  def find_sorted(numbers, target):
      low, high = 0, len(numbers) - 1
      while low <= high:
          mid = (low + high) // 2
          if numbers[mid] == target:
              return mid
          if numbers[mid] < target:
              low = mid + 1
          else:
              high = mid - 1
      return -1
  """,
    [(c([1, 3, 5, 7], 5), 2)],
    [c([], 1), c([1, 3, 5, 7], 4), c([2], 2), c([1, 3, 5, 7], 1), c([1, 3, 5, 7], 8)],
)

P(
    "merge_ranges",
    "hard",
    "Write a Python function `merge_ranges(ranges)` that takes a list of [start, end] pairs and merges the "
    "overlapping or touching ones, returning the merged pairs sorted by start.",
    """
  def merge_ranges(ranges):
      merged = []
      for start, end in sorted(ranges):
          if merged and start <= merged[-1][1]:
              merged[-1][1] = max(merged[-1][1], end)
          else:
              merged.append([start, end])
      return merged
  """,
    [(c([[1, 3], [2, 6], [8, 10]]), [[1, 6], [8, 10]])],
    [c([]), c([[5, 7]]), c([[1, 4], [4, 5]]), c([[6, 8], [1, 9], [2, 4]])],
)

P(
    "best_subarray_sum",
    "hard",
    "Write a Python function `best_subarray_sum(numbers)` that returns the largest possible sum of a non-empty "
    "run of consecutive elements of the non-empty list.",
    """
  def best_subarray_sum(numbers):
      best = current = numbers[0]
      for x in numbers[1:]:
          current = max(x, current + x)
          best = max(best, current)
      return best
  """,
    [(c([-2, 1, -3, 4, -1, 2, 1, -5, 4]), 6)],
    [c([1]), c([-3, -1, -2]), c([5, -1, 5]), c([2, 2, 2])],
)

P(
    "count_islands",
    "hard",
    "Write a Python function `count_islands(grid)` that takes a map as a list of equal-length strings of '1' "
    "(land) and '0' (water) and returns how many islands there are: groups of land cells joined up, down, left "
    "or right.",
    """
  def count_islands(grid):
      seen = set()
      islands = 0
      for r in range(len(grid)):
          for col in range(len(grid[r])):
              if grid[r][col] == "1" and (r, col) not in seen:
                  islands += 1
                  stack = [(r, col)]
                  seen.add((r, col))
                  while stack:
                      y, x = stack.pop()
                      for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                          if 0 <= ny < len(grid) and 0 <= nx < len(grid[ny]) and grid[ny][nx] == "1" \\
                                  and (ny, nx) not in seen:
                              seen.add((ny, nx))
                              stack.append((ny, nx))
      return islands
  """,
    [(c(["110", "010", "001"]), 2)],
    [c([]), c(["000"]), c(["111", "111"]), c(["101", "010", "101"])],
)

P(
    "postfix_value",
    "hard",
    "Write a Python function `postfix_value(tokens)` that evaluates an expression in reverse Polish notation "
    'given as a list of strings: integers and the operators "+", "-" and "*".',
    """
  def postfix_value(tokens):
      stack = []
      for token in tokens:
          if token in ("+", "-", "*"):
              right = stack.pop()
              left = stack.pop()
              stack.append(left + right if token == "+" else left - right if token == "-" else left * right)
          else:
              stack.append(int(token))
      return stack[0]
  """,
    [(c(["2", "3", "+", "4", "*"]), 20)],
    [c(["7"]), c(["5", "1", "2", "+", "4", "*", "+", "3", "-"]), c(["-2", "3", "*"]), c(["10", "4", "-"])],
)

P(
    "distinct_arrangements",
    "hard",
    "Write a Python function `distinct_arrangements(s)` that returns all distinct orderings of the characters "
    "of the string `s`, sorted alphabetically.",
    """
  from itertools import permutations

  def distinct_arrangements(s):
      return sorted({"".join(p) for p in permutations(s)})
  """,
    [(c("aab"), ["aab", "aba", "baa"])],
    [c(""), c("x"), c("abc"), c("zzz")],
)

P(
    "to_base",
    "hard",
    "Write a Python function `to_base(n, base)` that writes the non-negative integer `n` in the given base "
    "(2 to 16), using digits 0-9 and then upper-case letters A-F.",
    """
  def to_base(n, base):
      digits = "0123456789ABCDEF"
      if n == 0:
          return "0"
      out = []
      while n:
          n, remainder = divmod(n, base)
          out.append(digits[remainder])
      return "".join(reversed(out))
  """,
    [(c(255, 16), "FF")],
    [c(0, 2), c(10, 2), c(100, 7), c(4095, 16), c(35, 12)],
)

P(
    "look_and_say",
    "hard",
    "Write a Python function `look_and_say(n)` that returns the n-th term (counting from 1) of the sequence "
    '1, 11, 21, 1211, 111221, ... where each term describes the digits of the one before ("one 1", '
    '"two 1s", ...), as a string.',
    """
  def look_and_say(n):
      term = "1"
      for _ in range(n - 1):
          out = []
          i = 0
          while i < len(term):
              j = i
              while j < len(term) and term[j] == term[i]:
                  j += 1
              out.append(str(j - i) + term[i])
              i = j
          term = "".join(out)
      return term
  """,
    [(c(4), "1211")],
    [c(1), c(2), c(6), c(8)],
)

P(
    "rotate_clockwise",
    "hard",
    "Write a Python function `rotate_clockwise(matrix)` that returns the square matrix (a list of rows) rotated "
    "90 degrees clockwise.",
    """
  def rotate_clockwise(matrix):
      return [list(row) for row in zip(*matrix[::-1])]
  """,
    [(c([[1, 2], [3, 4]]), [[3, 1], [4, 2]])],
    [c([[1]]), c([[1, 2, 3], [4, 5, 6], [7, 8, 9]])],
)

P(
    "is_magic_square",
    "hard",
    "Write a Python function `is_magic_square(grid)` that returns True if the square grid of numbers has every "
    "row, every column and both diagonals adding up to the same total, else False.",
    """
  def is_magic_square(grid):
      n = len(grid)
      target = sum(grid[0])
      lines = [list(row) for row in grid] + [list(col) for col in zip(*grid)]
      lines.append([grid[i][i] for i in range(n)])
      lines.append([grid[i][n - 1 - i] for i in range(n)])
      return all(sum(line) == target for line in lines)
  """,
    [(c([[2, 7, 6], [9, 5, 1], [4, 3, 8]]), True), (c([[1, 2], [3, 4]]), False)],
    [c([[5]]), c([[1, 1], [1, 1]]), c([[2, 7, 6], [9, 5, 1], [4, 8, 3]])],
)

P(
    "longest_distinct_run",
    "hard",
    "Write a Python function `longest_distinct_run(s)` that returns the length of the longest substring of `s` "
    "in which no character repeats.",
    """
  def longest_distinct_run(s):
      last = {}
      start = best = 0
      for i, ch in enumerate(s):
          if ch in last and last[ch] >= start:
              start = last[ch] + 1
          last[ch] = i
          best = max(best, i - start + 1)
      return best
  """,
    [(c("abcabcbb"), 3)],
    [c(""), c("bbbb"), c("pwwkew"), c("abcdef"), c("abba")],
)

P(
    "nesting_depth",
    "hard",
    "Write a Python function `nesting_depth(s)` that returns the deepest level of nested round brackets in `s` "
    '("(a(b))" has depth 2); assume the brackets are balanced.',
    """
  def nesting_depth(s):
      depth = best = 0
      for ch in s:
          if ch == "(":
              depth += 1
              best = max(best, depth)
          elif ch == ")":
              depth -= 1
      return best
  """,
    [(c("(a(b))"), 2)],
    [c(""), c("abc"), c("()()"), c("((()))(())")],
)

P(
    "summarize_ranges",
    "hard",
    "Write a Python function `summarize_ranges(numbers)` that takes a sorted list of distinct integers and "
    'returns a list of strings describing runs of consecutive numbers: "a-b" for a run from a to b, and just '
    '"a" for a run of one number.',
    """
  def summarize_ranges(numbers):
      out = []
      i = 0
      while i < len(numbers):
          j = i
          while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
              j += 1
          out.append(str(numbers[i]) if i == j else f"{numbers[i]}-{numbers[j]}")
          i = j + 1
      return out
  """,
    [(c([1, 2, 3, 5, 7, 8]), ["1-3", "5", "7-8"])],
    [c([]), c([4]), c([0, 1]), c([-3, -2, -1, 1])],
)

P(
    "is_happy",
    "hard",
    "Write a Python function `is_happy(n)` that returns True if repeatedly replacing the positive integer `n` by "
    "the sum of the squares of its digits eventually reaches 1, and False if it loops forever without reaching 1.",
    """
  def is_happy(n):
      seen = set()
      while n != 1 and n not in seen:
          seen.add(n)
          n = sum(int(d) ** 2 for d in str(n))
      return n == 1
  """,
    [(c(19), True), (c(4), False)],
    [c(1), c(7), c(2), c(100)],
)

P(
    "wrap_text",
    "hard",
    "Write a Python function `wrap_text(text, width)` that splits the whitespace-separated words of `text` into "
    "lines of at most `width` characters, words joined by single spaces, putting as many words as fit on each "
    "line before starting the next; a word longer than `width` goes on its own line. Return the list of lines.",
    """
  def wrap_text(text, width):
      lines = []
      current = ""
      for word in text.split():
          if not current:
              current = word
          elif len(current) + 1 + len(word) <= width:
              current += " " + word
          else:
              lines.append(current)
              current = word
      if current:
          lines.append(current)
      return lines
  """,
    [(c("the quick brown fox", 10), ["the quick", "brown fox"])],
    [c("", 5), c("a b c d", 3), c("extraordinary word", 5), c("one two three", 100)],
)

P(
    "balance_point",
    "hard",
    "Write a Python function `balance_point(numbers)` that returns the first index i where the sum of the "
    "elements before i equals the sum of the elements after i, or -1 if there is none.",
    """
  def balance_point(numbers):
      total = sum(numbers)
      left = 0
      for i, x in enumerate(numbers):
          if left == total - left - x:
              return i
          left += x
      return -1
  """,
    [(c([1, 7, 3, 6, 5, 6]), 3)],
    [c([]), c([1, 2, 3]), c([5]), c([2, 1, -1]), c([0, 0, 0])],
)

P(
    "stair_ways",
    "hard",
    "Write a Python function `stair_ways(n)` that returns in how many different ways a staircase of `n` steps "
    "can be climbed taking 1, 2 or 3 steps at a time (there is 1 way to climb 0 steps).",
    """
  def stair_ways(n):
      ways = [1, 1, 2]
      for k in range(3, n + 1):
          ways.append(ways[k - 1] + ways[k - 2] + ways[k - 3])
      return ways[n]
  """,
    [(c(4), 7)],
    [c(0), c(1), c(2), c(3), c(10), c(20)],
)


# --------------------------------------------------------------------------------------------- building

RUNNER = r"""
import copy, json, sys
answers = []
for job in json.load(sys.stdin):
    namespace = {"__name__": "__reference__"}  # each reference in its own namespace
    exec(compile(job["code"], "<reference " + job["name"] + ">", "exec"), namespace)
    function = namespace[job["name"]]
    results = []
    for args in job["cases"]:
        value = function(*copy.deepcopy(args))
        # Reject values that JSON would silently change (tuples, sets, non-string keys): the executor
        # compares JSON, so the stored expectation must be exactly what the reference returns.
        if json.loads(json.dumps(value)) != value or type(json.loads(json.dumps(value))) is not type(value):
            raise SystemExit(f"{job['name']}{tuple(args)} returned a value JSON cannot carry exactly: {value!r}")
        results.append(value)
    answers.append(results)
json.dump(answers, sys.stdout)
"""


def run_references(specs: list[Spec], arg_lists_of: list[list[list]]) -> list[list]:
    """Run each reference on its argument lists in a fresh isolated interpreter (one per batch of
    problems, not the build's own process); return the results per problem."""
    jobs = [{"code": s.reference, "name": s.name, "cases": a} for s, a in zip(specs, arg_lists_of, strict=True)]
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        names = ", ".join(s.name for s in specs)
        raise RuntimeError(f"a reference failed ({names}):\n{proc.stderr.strip() or proc.stdout.strip()}")
    return json.loads(proc.stdout)


def call_text(name: str, args: tuple) -> str:
    return f"{name}({', '.join(repr(arg) for arg in args)})"


def prompt_for(spec: Spec) -> str:
    lines = [f"- `{call_text(spec.name, args)}` returns `{expected!r}`" for args, expected in spec.examples]
    label = "Example" if len(lines) == 1 else "Examples"
    return f"{spec.statement}\n\n{label}:\n" + "\n".join(lines)


def _check_spec(spec: Spec) -> None:
    assert spec.difficulty in ("easy", "medium", "hard"), spec.name
    assert f"`{spec.name}(" in spec.statement, f"{spec.name}: the statement must name the signature"
    for args in [a for a, _ in spec.examples] + spec.cases:
        assert isinstance(args, tuple), f"{spec.name}: arguments must be built with c(...)"
        assert json.loads(json.dumps(list(args))) == list(args), f"{spec.name}: arguments not JSON-exact: {args!r}"


def build_rows() -> list[dict]:
    """Every problem as a JSONL row, in the suite's order (difficulties interleaved, see ``ordered``)."""
    names = [spec.name for spec in PROBLEMS]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"duplicate problem names: {sorted(duplicates)}"
    rows = []
    specs = ordered(PROBLEMS)
    for spec in specs:
        _check_spec(spec)
    arg_lists_of = [[list(args) for args, _ in s.examples] + [list(args) for args in s.cases] for s in specs]
    # A few fresh interpreters side by side, each running a contiguous batch of references.
    batches = max(1, min(len(specs), os.cpu_count() or 1))
    bounds = [len(specs) * i // batches for i in range(batches + 1)]
    chunks = [(specs[lo:hi], arg_lists_of[lo:hi]) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    with ThreadPoolExecutor(max_workers=batches) as pool:
        parts = list(pool.map(lambda chunk: run_references(*chunk), chunks))
    all_results = [results for part in parts for results in part]
    for spec, arg_lists, results in zip(specs, arg_lists_of, all_results, strict=True):
        for (args, expected), got in zip(spec.examples, results, strict=False):
            if got != expected or type(got) is not type(expected):
                raise AssertionError(
                    f"{call_text(spec.name, args)}: example says {expected!r}, reference gives {got!r}"
                )
        outputs = [json.dumps(value) for value in results]
        # A test set whose answers are all the same would pass a constant function.
        if len(outputs) > 1 and len(set(outputs)) == 1:
            raise AssertionError(f"{spec.name}: every case has the same answer {outputs[0]}; add distinguishing cases")
        rows.append(
            {
                "task_id": f"basic/{spec.name}",
                "prompt": prompt_for(spec),
                "entry_point": spec.name,
                "difficulty": spec.difficulty,
                "reference": spec.reference,
                "tests": {
                    "kind": "call",
                    "fn_name": spec.name,
                    "cases": [
                        {"input": json.dumps(args), "output": out} for args, out in zip(arg_lists, outputs, strict=True)
                    ],
                },
            }
        )
    return rows


def ordered(specs: list[Spec]) -> list[Spec]:
    """Interleave difficulties evenly, so the first N problems (``--limit N``) keep the suite's mix."""
    position: dict[str, int] = {}
    totals = {level: sum(1 for s in specs if s.difficulty == level) for level in ("easy", "medium", "hard")}
    keyed = []
    for spec in specs:
        index = position.get(spec.difficulty, 0)
        position[spec.difficulty] = index + 1
        keyed.append(((index + 0.5) / totals[spec.difficulty], ("easy", "medium", "hard").index(spec.difficulty), spec))
    return [spec for *_, spec in sorted(keyed, key=lambda item: (item[0], item[1]))]


def render(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed file instead of writing it")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(build_rows())
    counts = {level: sum(1 for s in PROBLEMS if s.difficulty == level) for level in ("easy", "medium", "hard")}
    if args.check:
        if not args.output.exists() or args.output.read_text(encoding="utf-8") != text:
            print(f"{args.output} is out of date: run python scripts/build_basic.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date ({len(PROBLEMS)} problems: {counts})")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {len(PROBLEMS)} problems {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
