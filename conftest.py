"""Collect the rule tests in rules/tests/*.yaml as pytest items."""

pytest_plugins = ["engine.pytest_plugin"]
