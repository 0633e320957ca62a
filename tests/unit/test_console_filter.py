"""Which stderr lines trainers.console drops: TensorFlow's absl start-up lines, never anything else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainers.console import is_startup_noise

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796464246.054293   18354 port.cc:153] oneDNN custom operations are on.",
    b"I0000 00:00:1796464246.054618   18354 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    b"E0000 00:00:1796464249.320549   18354 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow",
]
KEPT = [
    b"E0000 00:00:1796464249.320549   18354 op_kernel.cc:1857] OP_REQUIRES failed at conv_ops.cc: RESOURCE_EXHAUSTED",
    b"Config error: trainer.epochs: received -1, expected a whole number >= 1",
    b"Traceback (most recent call last):",
    b"pull: error: no sweep at /tmp/x",
]


@pytest.mark.parametrize("line", NOISE)
def test_start_up_lines_are_dropped(line):
    assert is_startup_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_everything_else_is_kept(line):
    assert not is_startup_noise(line)


def test_a_filtered_process_passes_on_its_other_lines_in_order_up_to_its_last_byte():
    code = ("import os, sys\n"
            "from trainers.console import hide_tensorflow_startup_lines\nhide_tensorflow_startup_lines()\n"
            "os.write(2, b'first\\n' + b'I0000 00:00:1.5   7 port.cc:1] noise\\n')\nprint('second', file=sys.stderr)\n"
            "os.write(2, b'last, without a newline')\nsys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr == b"first\nsecond\nlast, without a newline"
