"""Vendors' payouts: payout account, balance, payouts; staff's payout console and holds."""
