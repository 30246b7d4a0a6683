"""Work that runs on a timer beside the turns: housekeeping now; the outbox dispatcher and
the scheduler of reminders, nudges and digests arrive with their issue."""
