"""The staff order console: every order, searched by what staff have in hand (a status, a store,
a buyer's email, a payment reference, a time range) and read in full, read-only.

Staff see every order whole: all vendors' lines, the buyer's email, the money in and out and
who moved the order when. Changing an order stays with the services that own each change.
"""
