"""Installs the package with the C library inside: the copy `make python` put in mml/, else $MML_LIBRARY, else the
repository's release build (../.build/release/libmmlc.so). Without any of them the install stops and says how to
build the library (the package itself is pure Python and needs no compiler)."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "libmmlc.so"


def find_library():
    for path in (os.path.join(HERE, "mml", NAME), os.environ.get("MML_LIBRARY", ""),
                 os.path.join(HERE, "..", ".build", "release", NAME)):
        if path and os.path.isfile(path):
            return os.path.abspath(path)
    raise SystemExit(f"mml: {NAME} not found (looked in python/mml/, $MML_LIBRARY and .build/release/); build it "
                     "with `swift build -c release --product mmlc` in the repository, or run `make python`")


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "mml", NAME)
        source = find_library()
        if os.path.abspath(target) != source:
            shutil.copyfile(source, target)


setup(cmdclass={"build_py": BuildWithLibrary})
