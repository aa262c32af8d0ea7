"""The documentation stands alone: every section the code cites exists in docs/reference.md, and nothing points at
the non-public specification the project was started from."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".txt", ".cfg", ".ini"}
SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
OLD_NAME = "reference" + "-spec"  # split so that this file does not match itself


def repo_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    files = [ROOT / line for line in out.splitlines() if Path(line).suffix in TEXT_SUFFIXES]
    return [f for f in files if f.is_file()]


def reference_sections() -> set[str]:
    heads = re.findall(r"^#{2,3} (\d+(?:\.\d+)*)\.? ", REFERENCE.read_text(encoding="utf-8"), flags=re.M)
    return set(heads)


def test_reference_has_numbered_sections():
    sections = reference_sections()
    # the sections the model and training code are built on
    assert {"1.2", "1.7", "1.8", "2.1", "2.2", "2.3", "3.7", "4.1", "4.8", "4.10", "5", "6.2", "7.2"} <= sections


def test_every_cited_section_exists():
    sections = reference_sections()
    missing = []
    for path in repo_text_files():
        if path == REFERENCE:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "docs/reference.md" not in text:
            continue
        # in a file that cites docs/reference.md, a bare "§N.M" refers to it too
        for number, line in ((m.group(1), text.count("\n", 0, m.start()) + 1) for m in SECTION.finditer(text)):
            if number not in sections:
                missing.append(f"{path.relative_to(ROOT)}:{line}: §{number}")
    assert not missing, "sections cited but absent from docs/reference.md:\n" + "\n".join(missing)


def test_no_citation_of_the_private_spec():
    stale = [str(p.relative_to(ROOT)) for p in repo_text_files()
             if OLD_NAME in p.read_text(encoding="utf-8", errors="replace")]
    assert not stale, f"files still citing {OLD_NAME} (run scripts/cite_reference.sh): {stale}"
