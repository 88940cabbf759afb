#!/usr/bin/env python3
"""No two source files of a crate import each other.

For each crate under crates/, every .rs file under src/ is a module. A file depends on
another when it names it through `crate::a::b`, `super::b` or, from a parent module, a child
it declares with `mod` and then uses (`b::Thing`). A pair that depends on each other is an
import circle: one idea split in two places, or two ideas tangled. Exit status 1 lists them.

    scripts/check-structure.py [crates/...]
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_path(src: Path, file: Path) -> tuple[str, ...]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)


def deps(src: Path) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    files = {module_path(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    graph: dict[tuple[str, ...], set[tuple[str, ...]]] = {m: set() for m in modules}

    def resolve(path: tuple[str, ...]) -> tuple[str, ...] | None:
        # The longest prefix of `path` that is a module file.
        for n in range(len(path), 0, -1):
            if path[:n] in modules:
                return path[:n]
        return None

    for mod, file in files.items():
        text = strip_comments(file.read_text())
        # Test modules may use anything of their parent.
        text = re.split(r"#\[cfg\((?:all\()?test", text)[0]
        for base, start in (("crate", ()), ("super", mod[:-1])):
            for m in re.finditer(
                rf"\b{base}(?=::)((?:::\w+)*)(::\{{([^}}]*)\}})?", text
            ):
                prefix = start + tuple(p for p in m.group(1).split("::") if p)
                paths = [prefix]
                if m.group(3) is not None:
                    # `use x::{a, b::c}`: each entry names its own path.
                    paths = [
                        prefix + (e.split("::")[0].strip(),)
                        for e in m.group(3).split(",")
                        if e.strip()
                    ]
                for path in paths:
                    target = resolve(path)
                    if target is None and base == "super" and start in modules:
                        target = start
                    if target and target != mod:
                        graph[mod].add(target)
        for child in re.findall(
            r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, flags=re.MULTILINE
        ):
            target = mod + (child,)
            if target in modules and re.search(rf"\b{child}::", text):
                graph[mod].add(target)
    return graph


def main() -> int:
    crates = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "crates").iterdir())
    circles = []
    for crate in crates:
        src = crate / "src"
        if not src.is_dir():
            continue
        graph = deps(src)
        for a, targets in graph.items():
            for b in targets:
                if a < b and a in graph.get(b, set()):
                    name = lambda m: "::".join(m) or "lib"
                    circles.append(f"{crate.name}: {name(a)} <-> {name(b)}")
    for c in circles:
        print(f"import circle: {c}")
    if circles:
        print(f"{len(circles)} import circle(s): move what both need into its own file")
        return 1
    print("no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
