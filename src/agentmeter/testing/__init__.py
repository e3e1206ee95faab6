"""Test support shipped with the package: a fake provider on loopback and a scripted agent, used by the tests,
the benchmarks and `agentmeter demo`. Nothing in the product imports it except the demo."""
