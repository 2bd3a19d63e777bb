"""How long `import interplab` takes (target: under 1 s), next to bare Python start-up and `import torch`.

Each figure is the median of several fresh interpreters, measured side by side in one run.
"""
import statistics
import subprocess
import sys
import time

from collect import ratio


def timed(code: str, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


if __name__ == "__main__":
    bare = timed("pass")
    kit = timed("import interplab")
    kit_attr = timed("import interplab; interplab.config; interplab.notebooks")
    torch = timed("import torch", repeat=3)
    print(f"python start-up          {bare:7.3f} s")
    print(f"import interplab         {kit:7.3f} s   (+{kit - bare:.3f} s over start-up; target < 1 s)")
    print(f"  + config, notebooks    {kit_attr:7.3f} s")
    print(f"import torch (reference) {torch:7.3f} s")
    print(f"ratio import interplab / import torch = {kit / torch:.3f}")
    ratio("import interplab (s)", kit, "<=", 1.0)
    sys.exit(0 if kit < 1.0 else 1)
