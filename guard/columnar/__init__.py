"""The columnar engine: a whole table of records decided as one check, with polars.

`frames` reads the input, `stamps` its timestamps, `screen` is the vectorised first pass,
`finish` the cross-record second pass, `decisions` what both found as columns, and `check`
runs a check of a frame for `Guard.check_frame` (and for big batches of dicts).
"""
