# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Base for this collection's action plugins: validated options, AWS clients, one engine per task.

AWS options are amazon.aws's own (same names, aliases and AWS_* environment fallbacks, read on the
controller), and amazon.aws's plugin base builds the clients from them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.envelope.kms.plugins.module_utils.envelope import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_FRAME_LENGTH,
    Engine,
)
from ansible_collections.envelope.kms.plugins.module_utils._envelope.inputs import (
    frame_length as checked_frame_length,
    predicted_key_ids,
)
from ansible_collections.envelope.kms.plugins.plugin_utils import requirements

try:
    from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec
    from ansible_collections.amazon.aws.plugins.plugin_utils.base import AWSPluginBase
except ImportError as error:  # the actions load, and each task fails with one line (run, below)
    AMAZON_AWS_ERROR = error
    AWSPluginBase = requirements.StandIn
    AWS_OPTIONS = {}
else:
    AMAZON_AWS_ERROR = None
    AWS_OPTIONS = aws_argument_spec()

# What to encrypt and how: the options of every action that writes envelopes (copy, encrypt),
# documented by the envelope.kms.encrypt doc fragment.
ENCRYPT_OPTIONS = dict(
    src=dict(type="path"),
    content=dict(type="raw", no_log=True),
    key_id=dict(type="list", elements="str", required=True),
    # EncryptActionBase.load_options lets only a mapping reach the dict type (which would make a
    # context of a string such as "app=billing")
    encryption_context=dict(type="dict", default={}),
    algorithm=dict(type="str", default=DEFAULT_ALGORITHM, choices=list(ALGORITHMS)),
    frame_length=dict(type="int", default=DEFAULT_FRAME_LENGTH),
)

# One engine per worker process and AWS settings. Ansible forks a worker per host and task and runs
# every loop item in it, so loop items share KMS clients and resolved key ARNs, while a later task
# starts afresh (and sees an alias that an earlier task re-pointed).
_ENGINES = {}


class EnvelopeActionBase(AWSPluginBase, ActionBase):
    """Subclasses set ARGUMENT_SPEC (AWS options are added) and the validation rules, and call
    ``self.load_options()`` first in ``run``. Actions that encrypt add ENCRYPT_OPTIONS."""

    ARGUMENT_SPEC = {}
    MUTUALLY_EXCLUSIVE = ()
    REQUIRED_ONE_OF = ()
    # Key id options, which an earlier task's check-mode prediction may give as null (key_ids).
    KEY_ID_OPTIONS = ()

    _options = None

    def run(self, tmp=None, task_vars=None):
        # first of all: without amazon.aws or the libraries, no option can even be read
        requirements.require(self._task.resolved_action or self._task.action, AnsibleActionFail, AMAZON_AWS_ERROR)
        return super().run(tmp, task_vars)

    def _do_fail(self, message):
        raise AnsibleActionFail(message)

    def load_options(self):
        """The task's options, validated: an unknown option (a typo) fails the task."""
        try:
            self._options = self.validate_argument_spec(
                argument_spec=self._argument_spec(),
                mutually_exclusive=list(self.MUTUALLY_EXCLUSIVE),
                required_one_of=list(self.REQUIRED_ONE_OF),
            )[1]
        except AnsibleActionFail as error:
            # ansible-core names a collection's action by its Python module: name it as tasks do
            action = self._task.resolved_action or self._task.action
            error.message = error.message.replace(f"({self._load_name})", f"({action})")
            raise
        return self._options

    def _argument_spec(self):
        spec = dict(AWS_OPTIONS, **self.ARGUMENT_SPEC)
        for name in self.KEY_ID_OPTIONS:
            if self._given_as_null(name):
                # required means given, and it is: its null reaches key_ids (Ansible would refuse to
                # convert it to a list, in check mode too)
                spec[name] = dict(spec[name], required=False)
        return spec

    def _given_as_null(self, name):
        return name in self._task.args and self._task.args[name] is None

    def key_ids(self, name="key_id"):
        """The key ids of the option ``name``, checked before any KMS call: a list in which a null
        or blank entry is None (given as null: one such entry), which only check mode takes (the id
        of a key an earlier task would create); None when the task does not give the option."""
        value = self._options[name]
        if value is None and not self._given_as_null(name):
            return None
        return predicted_key_ids(value, self._task.check_mode, name)

    def resolve_key_arns(self, key_ids, name="key_id"):
        """The key ARNs of ``key_ids`` (key_ids' list); in check mode a key not known yet is warned
        about, naming it, and stands as an unknown key ARN (results show it with shown_key_arns)."""
        return self.engine().resolve_key_arns(key_ids, self._task.check_mode, self._display.warning, name)

    def get_options(self):
        # amazon.aws's plugin base reads the AWS options through this
        return self._options

    def engine(self):
        settings = tuple(sorted((name, repr(self._options.get(name))) for name in AWS_OPTIONS))
        if settings not in _ENGINES:
            _ENGINES[settings] = Engine.for_aws(self)
        return _ENGINES[settings]


class EncryptActionBase(EnvelopeActionBase):
    """Actions that write envelopes (copy, encrypt): their ARGUMENT_SPEC holds ENCRYPT_OPTIONS, and
    what to encrypt is src or content."""

    MUTUALLY_EXCLUSIVE = (("src", "content"),)
    REQUIRED_ONE_OF = (("src", "content"),)
    KEY_ID_OPTIONS = ("key_id",)

    def load_options(self):
        """The options, with the context's type, the frame length and the key ids (key_ids) checked
        (before any KMS call)."""
        checked_context(self._task.args.get("encryption_context"))
        options = super().load_options()
        checked_frame_length(options["frame_length"])
        options["key_id"] = self.key_ids()
        return options


def checked_context(value):
    """The encryption_context option: a mapping (or nothing), never a string Ansible could parse
    into one, nor a list or a number. Its pairs are checked by normalize_context."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AnsibleActionFail(f"encryption_context must be a dictionary of key/value pairs, not {_type_name(value)}")
    return dict(value)


def _type_name(value):
    # Ansible tags the values it loads (a str may be an _AnsibleTaggedStr): name the plain type
    for kind in (bool, int, float, str, bytes, list, tuple, set):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__
