// STUB: tests to be written.
