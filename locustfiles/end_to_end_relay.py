"""End to end through a relay: is every message delivered, once, and how late?

Put the bundled sink where the server under test delivers (here a Postfix relaying
everything over LMTP to a UNIX socket; any relay or mailbox server will do):

    locust-smtp-sink -L unix:/srv/sink.lmtp --delivery-report delivery.json \\
        --delivery-log arrivals.jsonl --report-interval 1 --expect relay-test-1=6000 &
    # main.cf of the server under test:  default_transport = lmtp:unix:/srv/sink.lmtp

then send through the server at a fixed rate, each message traced:

    locust -f locustfiles/end_to_end_relay.py --host smtp://mx.test:25 --headless -u 40 \\
        --smtp-messages 6000 --smtp-rate 200 --smtp-run-id relay-test-1 \\
        --smtp-transaction-log sent.jsonl

Each message carries ``X-Locust-Smtp-Trace: run=...; seq=...; sent=...``; the sink
reads it on arrival and reports per run what arrived, duplicates, gaps, what was lost
(against ``--expect``) and the delivery latency percentiles (docs/delivery.md).
``benchmarks/plot_transaction_log.py sent.jsonl --delivery arrivals.jsonl`` plots the
server's acceptance latency and the delivery latency side by side.
"""

from locust_smtp import SmtpUser


class TracedSender(SmtpUser):
    sender = "e2e@load.example"
    recipient = "inbox@relay.example"
    trace_delivery = True
    reuse_connection = True
    hello_command = "EHLO"
    pipelining = "auto"
    message_sizes = "lognormal:8K,1.0,1M"
