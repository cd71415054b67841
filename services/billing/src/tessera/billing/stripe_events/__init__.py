"""The Stripe events billing received (table `stripe_events`): recorded by the webhook
ingress in group commits, claimed and applied by the applier, searched by admins."""
