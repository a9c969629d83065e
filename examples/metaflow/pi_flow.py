"""A Monte Carlo estimate of pi with Metaflow, its dart-throwing steps on AWS Batch:
`start` splits the work, `throw` runs once per shard as a Batch job (@batch), `join`
adds the shards up and `end` prints the estimate. Nothing here knows about batchplane:
the same flow runs on AWS Batch with Metaflow's usual configuration."""

import os
import random

from metaflow import FlowSpec, Parameter, batch, current, step


class PiFlow(FlowSpec):
    shards = Parameter("shards", help="how many Batch jobs throw darts", default=3, type=int)
    darts = Parameter("darts", help="darts per job", default=200_000, type=int)
    fail_shard = Parameter("fail-shard", help="this shard's step raises: its Batch job fails", default=-1, type=int)

    @step
    def start(self):
        self.seeds = list(range(self.shards))
        self.next(self.throw, foreach="seeds")

    @batch(cpu=1, memory=512)
    @step
    def throw(self):
        if self.input == self.fail_shard:
            raise RuntimeError(f"shard {self.input}: failing on purpose")
        rng = random.Random(self.input)
        self.hits = sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(self.darts))
        # Where this step ran: AWS Batch sets these in every job's environment.
        self.batch_job_id = os.environ.get("AWS_BATCH_JOB_ID")
        self.execution_env = os.environ.get("AWS_EXECUTION_ENV")
        print(f"shard {self.input}: {self.hits} of {self.darts} darts inside, "
              f"Batch job {self.batch_job_id} ({self.execution_env}), task {current.pathspec}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.hits = sum(i.hits for i in inputs)
        self.total = sum(1 for _ in inputs) * self.darts
        self.batch_job_ids = sorted(i.batch_job_id for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        self.pi = 4 * self.hits / self.total
        print(f"pi ~= {self.pi:.5f} from {self.total:,} darts in {len(self.batch_job_ids)} Batch jobs")


if __name__ == "__main__":
    PiFlow()
