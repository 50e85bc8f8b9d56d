"""Reports of lab runs: record what a lab does, render it as one HTML file.

``recorder.Recorder`` is handed to a ``Lab`` and called at its events
(``hooks``); ``html.render(data)`` turns what it recorded into one
self-contained page; ``pytest_report`` is the pytest plugin behind
``--testbed-report DIR`` and the JUnit properties. This package's
``__init__`` imports nothing, so the lab can import ``hooks`` cheaply.
"""
