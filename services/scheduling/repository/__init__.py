"""All SQL of the scheduling service, one module per aggregate: ``sites``, ``series``
(and booking), ``appointments``, ``patients`` (with their reviews and holds),
``waitlist``, and ``calendars`` (the per-process calendar cache, which reads bookings by
change number). Every function takes a connection in the caller's transaction, plain
values in, frozen rows (services/scheduling/rows.py) out.

Lock order, the same in every transaction so that none deadlocks with another:

1. the patient's advisory lock (``patients.serialize_patient``), before reading
   anything about them: an API call locks its appointment's patient first
   (services/scheduling/commands.py), as every event reaction does;
2. the patient's rows: ``patients.lock_patient`` (or ``patients.serialized_locked_patient``,
   which takes 1. and creates the row first when new, in one statement), their
   appointments ``FOR UPDATE``;
   waitlist entries are taken ``FOR UPDATE SKIP LOCKED`` (never waited for);
3. the site's advisory lock (``sites.serialized_site``), held to commit while the
   plan is made and booked (services/scheduling/planner/booking.py), always last.
"""
