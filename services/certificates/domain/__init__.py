"""Pure rules of birth-certificate issuance (出生医学证明): no I/O, no web framework."""
