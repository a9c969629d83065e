"""A multi-node parallel job that really talks over TCP: every node throws darts, the
other nodes send their counts to the main node at its address, and the main node adds
them up, prints pi and sends the total back to each. Standard library only.

AWS Batch (and batchplane) tell each node who it is and where the main node is:
AWS_BATCH_JOB_NODE_INDEX, AWS_BATCH_JOB_NUM_NODES, AWS_BATCH_JOB_MAIN_NODE_INDEX and,
on the other nodes, AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS.

    python pi_ring.py PORT DARTS
"""

import json
import os
import random
import socket
import sys
import time

CONNECT_SECONDS = 60  # the main node may still be starting its listener


def darts(index: int, count: int) -> int:
    rng = random.Random(index)
    return sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(count))


def main_node(port: int, count: int, index: int, num: int) -> None:
    hits = {index: darts(index, count)}
    with socket.create_server(("", port)) as server:
        peers = []
        while len(peers) < num - 1:
            conn, address = server.accept()
            message = json.loads(conn.makefile().readline())
            hits[message["node"]] = message["hits"]
            print(f"main: node {message['node']} at {address[0]} threw {message['hits']} hits", flush=True)
            peers.append(conn)
        total = sum(hits.values())
        pi = 4 * total / (count * num)
        for conn in peers:
            conn.sendall((json.dumps({"pi": pi, "nodes": sorted(hits)}) + "\n").encode())
        # The job ends when the main node does, and the other nodes are stopped then:
        # wait until each has said it is done.
        for conn in peers:
            conn.makefile().readline()
            conn.close()
    print(f"main: pi ~= {pi:.5f} from {count * num:,} darts on nodes {sorted(hits)}", flush=True)


def other_node(port: int, count: int, index: int, main_address: str) -> None:
    hits = darts(index, count)
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            conn = socket.create_connection((main_address, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with conn:
        conn.sendall((json.dumps({"node": index, "hits": hits}) + "\n").encode())
        answer = json.loads(conn.makefile().readline())
        print(f"node {index}: sent {hits} hits to the main node at {main_address}; pi ~= {answer['pi']:.5f}",
              flush=True)
        conn.sendall(b"done\n")


if __name__ == "__main__":
    port, count = int(sys.argv[1]), int(sys.argv[2])
    index = int(os.environ["AWS_BATCH_JOB_NODE_INDEX"])
    num = int(os.environ["AWS_BATCH_JOB_NUM_NODES"])
    if index == int(os.environ["AWS_BATCH_JOB_MAIN_NODE_INDEX"]):
        main_node(port, count, index, num)
    else:
        other_node(port, count, index, os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"])
