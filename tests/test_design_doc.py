"""docs/design.md lists every module of the package (the map must not go stale)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_design_page_lists_every_module() -> None:
    page = (ROOT / "docs" / "design.md").read_text()
    package = ROOT / "treeattn"
    modules = sorted(
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and "pretrained" not in p.relative_to(package).parts[:1]
    )
    assert modules, "no modules found"
    missing = [m for m in modules if f"`{m}`" not in page]
    assert not missing, f"docs/design.md does not list {missing}"
