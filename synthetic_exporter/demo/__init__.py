"""An embedded demo customer API for the example checks, with fault injection."""
