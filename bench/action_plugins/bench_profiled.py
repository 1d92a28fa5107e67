"""Bench-only action plugin: runs another action plugin under cProfile (see bench/README.md).

Task args are the wrapped action's own; play or task variables say what to do:
  bench_wrapped_action  the action to run, e.g. envelope.kms.copy or ansible.builtin.copy
  bench_profile_dir     folder for the profiles: NAME.load.prof (loading the plugin: its imports,
                        the first time in this worker process) and NAME.run.prof (its run()), with
                        NAME.json holding the seconds of each

The wrapped plugin is loaded and called the way ansible-core's template action hands over to copy,
so the collection's code is profiled from the outside, unchanged. Ansible forks one worker process
per host and task, so the first loop item of a task pays the imports.
"""

import cProfile
import json
import os
import sys
import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        name = task_vars.get("bench_wrapped_action")
        folder = task_vars.get("bench_profile_dir")
        if not name or not folder:
            raise AnsibleActionFail("bench_profiled needs the variables bench_wrapped_action and bench_profile_dir")
        os.makedirs(folder, exist_ok=True)
        stamp = f"{name.replace('.', '_')}.{os.getpid()}.{time.monotonic_ns()}"
        record = {"action": name, "pid": os.getpid(), "boto3_loaded_before": "boto3" in sys.modules}

        load_profile = cProfile.Profile()
        started = time.perf_counter()
        wrapped = load_profile.runcall(
            self._shared_loader_obj.action_loader.get,
            name,
            task=self._task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        record["load_seconds"] = time.perf_counter() - started
        load_profile.dump_stats(os.path.join(folder, f"{stamp}.load.prof"))

        run_profile = cProfile.Profile()
        started = time.perf_counter()
        try:
            return run_profile.runcall(wrapped.run, tmp, task_vars)
        finally:
            record["run_seconds"] = time.perf_counter() - started
            run_profile.dump_stats(os.path.join(folder, f"{stamp}.run.prof"))
            with open(os.path.join(folder, f"{stamp}.json"), "w", encoding="utf-8") as handle:
                json.dump(record, handle)
