"""`import rbflex` with another torch is one line naming both versions."""

import subprocess
import sys


def test_another_torch_is_refused_in_one_line():
    code = ("import torch; torch.__version__ = '2.5.1+cpu'\n"
            "try:\n    import rbflex\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == ("rbflex needs torch 2.13.x (its engine is built on libtorch 2.13), "
                   "but torch 2.5.1 is installed\n")


def test_help_describes_score():
    import rbflex

    assert "Scores ``model`` with training-free proxies" in rbflex.score.__doc__
