"""A ramping SMTP load: sessions climb in steps, hold, then drain.

    locust -f locustfiles/ramping.py --host smtp://127.0.0.1:2525

The shape drives the user count by itself (the web UI shows the steps as
they happen); each user keeps its connection and pauses a little between
messages, like a busy submission client.
"""

from locust import LoadTestShape, between

from locust_smtp import SmtpUser


class Submitter(SmtpUser):
    reuse_connection = True
    message_size = 20_000
    wait_time = between(0.05, 0.2)


class StepRamp(LoadTestShape):
    """(end of stage in seconds, users, spawn rate)"""

    stages = [(30, 10, 5), (60, 30, 5), (90, 60, 10), (120, 60, 10), (150, 10, 10)]

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        for end, users, rate in self.stages:
            if run_time < end:
                return users, rate
        return None
