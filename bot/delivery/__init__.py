"""Work that runs beside the turns: the scheduler (jobs that write due reminders, nudges
and digests into the outbox), the outbox dispatcher (sends them through each channel's
Sender), housekeeping, and a worker entry point (`python -m bot.delivery.worker`)."""
