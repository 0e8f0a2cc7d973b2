"""Benchmark harness for bench/run.sh: Gatehouse against nginx and HAProxy (bench/README.md)."""
