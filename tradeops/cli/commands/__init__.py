"""One module per command group of `tradeops`: `add_arguments(parser, parser_class)` and `run(args) -> int`."""
