"""In-app notifications: a shopper's inbox (list, mark read) and the notices written about orders."""
