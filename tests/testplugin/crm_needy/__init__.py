"""A plugin that needs testplug."""
requires = ("testplug",)
