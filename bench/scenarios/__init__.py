"""The benches' scenarios, one module per measured part: :mod:`bench.scenarios.pipeline` for bench/pipeline.py,
:mod:`bench.scenarios.capture` for bench/capture.py. Each package's docstring says how to add one."""
