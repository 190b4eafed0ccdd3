"""The use cases that commands, reactions and the worker's timer share.

- ``booking``: plan on the site's calendar with the pure search (services/scheduling/domain/),
  book the plan under a savepoint, or waitlist the patient;
- ``proposals``: what each kind of proposal plans (an induction series, a dose with its
  integration session, a lone integration session), through ``booking``;
- ``followups``: what an appointment's change sets off (a released dose's replacement,
  an integration rebooked, the next maintenance session), a worsening patient's
  maintenance session, and the retries of the waitlist;
- ``store``: the repository calls they make, as protocols (the repository by default;
  an in-memory fake in unit tests).
"""
