"""Tables and figures the notebooks call. Every number comes from a pipeline output file."""
