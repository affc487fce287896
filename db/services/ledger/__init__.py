"""The money side: ledger postings of every money event, balances, statements and their checks."""
