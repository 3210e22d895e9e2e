"""Where a task try's log can be read from: one module per store, one `read` shape for all."""
