"""Import a script under benchmarks/ as a module (the scripts are not a package; their siblings, such as
report.py's report_claims.py, import each other by name)."""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark(name: str):
    """benchmarks/NAME.py as the module NAME (registered in sys.modules: dataclasses look their module up there)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    finally:
        sys.path.pop(0)
    return mod
