"""Other processes for the library fault tests: each opens the library with the Python API, as the
CLI, the camera loop or the HTTP API would. Run as ``python -m tests.library_workers CMD ...`` (one
JSON line per result on stdout) or as multiprocessing targets."""
import json
import pickle
import random
import sys
import time

from edge import errors as E
from edge.library import FaceLibrary


def _open(db, model, dim):
    return FaceLibrary(db, model, dim)


def add_users(db, model, dim, items, start, results):
    """multiprocessing target: enrol (name, FaceRecord) items one by one once ``start`` is set."""
    lib = _open(db, model, dim)
    rng = random.Random(len(items))
    start.wait(60)
    for name, rec in items:
        time.sleep(rng.uniform(0.01, 0.04))     # what the model takes per enrolment (~36 ms measured)
        try:
            lib.user_add(name, "staff", rec)
            results.put(("added", name, None))
        except E.EdgeError as e:
            results.put(("failed", name, e.to_dict()))
    lib.close()
    results.put(("done", None, None))


def delete_loop(db, model, dim, start, stop, results, max_deletes):
    """multiprocessing target: delete a random enrolled user every few ms while the adders run."""
    lib = _open(db, model, dim)
    rng = random.Random(1)
    start.wait(60)
    n = 0
    while not stop.is_set() and n < max_deletes:
        try:
            users = lib.get_user_list("staff", 0, 1000)
        except E.EdgeError:
            users = []                      # the group appears with the first enrolment
        if users:
            victim = rng.choice(users)
            lib.user_delete(victim, "@ALL")
            results.put(("deleted", victim, None))
            n += 1
        time.sleep(rng.uniform(0.005, 0.03))
    lib.close()
    results.put(("done", None, None))


def main(argv):
    cmd, db = argv[0], argv[1]
    if cmd == "migrate":                    # open (and so seal) a plain library in small chunks
        from edge.library import store
        store.MIGRATE_CHUNK = int(argv[2])
        FaceLibrary(db, argv[3], int(argv[4])).close()
        return
    with open(argv[2], "rb") as f:
        job = pickle.load(f)
    lib = _open(db, job["model"], job["dim"])
    print(json.dumps({"opened": time.time()}), flush=True)
    for name, rec in job.get("add", []):
        try:
            lib.user_add(name, "staff", rec)
            out = {"added": name, "committed": time.time(), "generation": lib.index_generation}
        except E.EdgeError as e:
            out = {"failed": name, "error": e.to_dict()}
        print(json.dumps(out), flush=True)
    for name in job.get("delete", []):
        lib.user_delete(name, "@ALL")
        print(json.dumps({"deleted": name, "committed": time.time(), "generation": lib.index_generation}), flush=True)
    lib.close()


if __name__ == "__main__":
    main(sys.argv[1:])
