"""The customer's pages: licenses and machines, orders, desktop sign-in approval, sessions."""
