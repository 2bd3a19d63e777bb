"""Build hook: the wheel carries the kit files that live outside the package, copied at build time.

``starters/``, ``requirements.txt`` and ``README.md`` stay where they are, the one source each; the
build copies them into ``interplab/_kit/`` (with the commit it was built from, when git knows it)
so an install from the wheel (the Colab setup cell's ``pip install "interplab @ git+..."``) can
create starters, install the pinned versions and list the notebooks without a source checkout.
Everything else is in pyproject.toml.
"""
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
KIT_FILES = ("starters", "requirements.txt", "README.md")
SKIP = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "results", ".venv", ".env", "build", "*.pyc")


class build_py_with_kit(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads the checkout itself (interplab.config.kit_path)
            return
        dest = Path(self.build_lib) / "interplab" / "_kit"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in KIT_FILES:
            src = HERE / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=SKIP)
            else:
                shutil.copyfile(src, dest / name)
        try:
            commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if commit:
            (dest / "COMMIT").write_text(commit + "\n", encoding="utf-8")


setup(cmdclass={"build_py": build_py_with_kit})
