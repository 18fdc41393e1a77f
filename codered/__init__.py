"""codered: the application that wires inbox, policies, drafting and mailer together."""
