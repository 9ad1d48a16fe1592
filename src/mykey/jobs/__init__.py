"""Background work: a job queue in the platform's database, its workers and periodic jobs.

`queue` (enqueue, claim under a lease, finish, progress, periodic ticks) and `worker` (runs
them) know nothing of the domains; `kinds` names the jobs the platform runs and their handlers.
"""
