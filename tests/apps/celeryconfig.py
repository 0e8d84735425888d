"""A Celery-style settings module, for app.config_from_object("tests.apps.celeryconfig")."""

from datetime import timedelta

broker_url = "nats://127.0.0.1:4999"
result_expires = timedelta(hours=2)
task_acks_late = False
task_time_limit = 30
task_soft_time_limit = 20
task_ignore_result = True
task_track_started = True
task_default_retry_delay = 5
task_max_retries = 7
timezone = "Europe/Paris"
enable_utc = True
worker_concurrency = 8
worker_prefetch_multiplier = 4
task_serializer = "json"
result_serializer = "msgpack"
accept_content = ["json", "msgpack"]
beat_schedule = {"tick": {"task": "tasks.tick", "schedule": 10.0}}
