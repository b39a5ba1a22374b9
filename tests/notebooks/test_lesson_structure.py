"""The lessons' shape, read from the stored notebooks (nothing is executed): every graded task is
reachable from a "Your turn" cell followed by its check cell, no Markdown cell runs past ~250
words, and every lesson's Questions have hints in the lesson and worked answers in
solutions/answers/."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_WORDS = 250
CHECK_WITHIN = 3            # the check cell comes at most this many cells after "Your turn"


def _cells(path):
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(path.read_text())["cells"]]


def _graded_tasks() -> set[str]:
    tasks = set()
    for f in (ROOT / "tests/exercises").glob("test_lesson*.py"):
        tasks |= set(re.findall(r'mark\.task\("([\d.]+)"', f.read_text()))
    return tasks


def prose_words(markdown: str) -> int:
    """Words a reader reads: outside $$...$$ and $...$ math, HTML tags and code blocks."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return len(text.split())


def _questions(markdown: str) -> int:
    return len(re.findall(r"^\s{0,3}\d+\.\s", markdown, flags=re.M))


def test_prose_word_count_ignores_math_and_tags():
    assert prose_words("one two $a + b = c$ three <b>four</b> $$\\sum_i x_i$$") == 4


@pytest.mark.parametrize("task", sorted(_graded_tasks(), key=lambda t: tuple(map(int, t.split(".")))))
def test_every_task_has_your_turn_and_a_check_cell(task):
    lesson = int(task.split(".")[0])
    [path] = [p for p in NOTEBOOKS if int(p.name[:2]) == lesson]
    cells = _cells(path)
    turns = [i for i, (kind, src) in enumerate(cells)
             if kind == "markdown" and re.search(rf"Your turn\b[^\n]*\bTasks?\b[^\n]*\b{re.escape(task)}\b(?!\.)", src)]
    assert turns, f"{path.name}: no 'Your turn' Markdown cell names Task {task}"
    i = turns[0]
    after = [src for kind, src in cells[i + 1:i + 1 + CHECK_WITHIN] if kind == "code"]
    assert any(f'check("{task}")' in src for src in after), \
        f"{path.name}: no check(\"{task}\") cell within {CHECK_WITHIN} cells after its 'Your turn' cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_cells_stay_short(path):
    long = [(i, prose_words(src)) for i, (kind, src) in enumerate(_cells(path))
            if kind == "markdown" and prose_words(src) > MAX_WORDS]
    assert not long, f"{path.name}: Markdown cells over {MAX_WORDS} words (cell, words): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_questions_have_hints_and_answers(path):
    cells = _cells(path)
    heads = [i for i, (kind, src) in enumerate(cells) if kind == "markdown" and src.lstrip().startswith("## Questions")]
    assert len(heads) == 1, f"{path.name}: expected one '## Questions' cell"
    n = _questions(cells[heads[0]][1])
    assert n >= 1
    hints = cells[heads[0] + 1]
    assert hints[0] == "markdown" and "<details>" in hints[1] and "</details>" in hints[1], \
        f"{path.name}: the cell after '## Questions' must be a collapsed <details> hints cell"
    assert _questions(hints[1]) == n, f"{path.name}: {n} questions but {_questions(hints[1])} numbered hints"
    answers = ROOT / "solutions" / "answers" / f"lesson{path.name[:2]}.md"
    assert answers.is_file(), f"no worked answers for {path.name}: {answers.relative_to(ROOT)}"
    found = sorted(int(k) for k in re.findall(r"^## Question (\d+)\b", answers.read_text(), flags=re.M))
    assert found == list(range(1, n + 1)), f"{answers.name}: answers to questions {found}, expected 1..{n}"
    for k, body in enumerate(re.split(r"^## Question \d+.*$", answers.read_text(), flags=re.M)[1:], 1):
        assert len(body.split()) >= 25, f"{answers.name}: the answer to question {k} is too short to be worked"
