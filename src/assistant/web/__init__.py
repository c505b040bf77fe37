"""The chat page: a Gradio app over one ``Assistant``, kept apart from the library.

``app`` builds and serves the page and its ``/ask`` API; ``render`` turns answers into the
page's HTML; ``documents`` is its documents panel; ``guard`` decides who may send what;
``feedback`` keeps the votes and turns thumbs-down into draft eval cases; ``examples`` picks
the questions the page suggests. The library never imports this package, so a program that
only asks questions loads no web framework.
"""
