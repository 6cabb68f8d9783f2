"""The benchmarks: bench/pipeline.py and bench/capture.py (entry points), bench/harness/ (what they share),
bench/scenarios/ (one module per measured part), bench/targets.py and bench/receiver.py. See bench/README.md."""
