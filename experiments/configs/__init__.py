"""Configs: `<name>.py` defines `get_config(arg=None)`; arg "smoke" shrinks everything for tests."""
