"""No function or method in plugins/ is more complex than radon's grade C (cyclomatic complexity 20):
a main() that grows past it belongs in module_utils, as the architecture notes say."""

import os

from radon.complexity import cc_rank, cc_visit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORST_GRADE = "C"


def blocks(path):
    with open(path, encoding="utf-8") as handle:
        for block in cc_visit(handle.read()):
            yield block
            yield from getattr(block, "closures", [])


def test_no_block_above_grade_c():
    too_complex = []
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                too_complex += [f"{os.path.relpath(path, ROOT)}:{block.lineno} {block.name} "
                                f"{cc_rank(block.complexity)} ({block.complexity})"
                                for block in blocks(path) if cc_rank(block.complexity) > WORST_GRADE]
    assert too_complex == []


def test_the_rank_reports_what_it_should():
    """The control: a function with 21 branches ranks D and would be reported."""
    source = "def f(x):\n" + "".join(f"    if x == {n}:\n        return {n}\n" for n in range(20)) + "    return x\n"
    (block,) = cc_visit(source)
    assert (block.complexity, cc_rank(block.complexity)) == (21, "D")
