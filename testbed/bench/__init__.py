"""Measuring tools, not needed to run a lab: the benchmark
(``python -m testbed.bench.benchmark``), its fixed-size experiments and
the soak test (``python -m testbed.bench.soak``)."""
