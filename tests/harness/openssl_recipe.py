"""The tutorial's openssl recipe (../shared/000_ea2da740f854925d.txt in the project's notes), step by
step: `aws kms generate-data-key` (the same call through boto3), the CiphertextBlob decoded into
.key/encrypted_data_key, and the base64 text of the plaintext key given to `openssl enc -e -aes256 -k`."""

import base64
import os
import subprocess


class Recipe:
    """The tutorial's steps in a folder: one data key, its blob in .key/, files encrypted by openssl."""

    def __init__(self, kms, folder, key_id):
        self.folder = folder
        os.makedirs(os.path.join(folder, ".key"), exist_ok=True)
        answer = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        self.blob_file = os.path.join(folder, ".key", "encrypted_data_key")
        with open(self.blob_file, "wb") as handle:  # `--query CiphertextBlob | base64 --decode > ...`
            handle.write(answer["CiphertextBlob"])
        self.blob_text = base64.b64encode(answer["CiphertextBlob"]).decode()
        # `aws kms decrypt --output text --query Plaintext` prints base64: the recipe's passphrase
        self._passphrase = base64.b64encode(kms.decrypt(CiphertextBlob=answer["CiphertextBlob"])["Plaintext"]).decode()
        self.plaintexts = {}

    def encrypt(self, name, plaintext, *flags):
        original = os.path.join(self.folder, name + ".orig")
        with open(original, "wb") as handle:
            handle.write(plaintext)
        out = os.path.join(self.folder, name + ".enc")
        subprocess.run(["openssl", "enc", "-e", "-aes256", "-k", self._passphrase, "-in", original, "-out", out,
                        *flags], check=True, capture_output=True)
        os.unlink(original)  # only the legacy file stays, as in the recipe
        self.plaintexts[name] = plaintext
        return out
