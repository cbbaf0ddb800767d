// The AWS SDK for JavaScript v2 (aws-sdk): its own JSON protocol code, error
// parsing and SigV4 signer, still in many Node.js applications. check.mjs
// runs this step ("v2") with its helpers; every response goes on the same
// wire and its successful bodies through the same model check.
import { createPublicKey, verify as cryptoVerify, constants, randomBytes } from 'node:crypto'
import AWS from 'aws-sdk'

export async function v2Step (h) {
  const { endpoint, region, account, credentials, wire, shape, pass, need, fail, deviation, kmsModel: KM, smModel: SM } = h
  console.log(`== AWS SDK for JavaScript v2 ${AWS.VERSION}: KMS and Secrets Manager`)
  const start = wire.length
  // Each request's response goes on the wire, as RecordingHandler does for v3.
  const record = (req) => req.on('complete', (resp) => {
    const hr = resp.httpResponse
    const auth = req.httpRequest.headers.Authorization || ''
    wire.push({
      target: req.httpRequest.headers['X-Amz-Target'], status: hr.statusCode, headers: hr.headers,
      body: Buffer.from(hr.body || ''), signed: /SignedHeaders=([^,\s]+)/.exec(auth)?.[1], token: req.httpRequest.headers['x-amz-security-token'],
    })
  })
  const cfg = {
    endpoint, region, maxRetries: 0, sslEnabled: false,
    credentials: new AWS.Credentials(credentials.accessKeyId, credentials.secretAccessKey, credentials.sessionToken),
  }
  const kms = new AWS.KMS(cfg); kms.customizeRequests(record)
  const sm = new AWS.SecretsManager(cfg); sm.customizeRequests(record)

  // v2err awaits a call that must fail, and checks v2's error (code,
  // statusCode, requestId) and the raw body's __type and message against
  // AWS's; message undefined: not asserted, '': AWS sends none.
  async function v2err (p, code, message, status, label) {
    let err
    try { await p } catch (e) { err = e }
    if (!err) fail(`${label}: succeeded, want ${code}`)
    need(err.code === code, `${label}: v2 err.code ${err.code} (${err.message}), want ${code}`)
    need(err.statusCode === status, `${label}: err.statusCode ${err.statusCode}, want ${status}`)
    need(err.requestId && err.requestId === wire[wire.length - 1].headers['x-amzn-requestid'], `${label}: err.requestId ${err.requestId}`)
    const body = JSON.parse(wire[wire.length - 1].body.toString('utf8'))
    const type = String(body.__type || '').split('#').pop()
    if (type !== code) deviation(`${label}: __type ${JSON.stringify(body.__type)}, want ${code}`)
    const raw = body.message ?? body.Message
    if (message === '' && raw !== undefined) deviation(`${label}: ${code} carries a message ${JSON.stringify(raw)}, AWS sends none`)
    if (message && raw !== message) deviation(`${label}: message ${JSON.stringify(raw)}, AWS says ${JSON.stringify(message)}`)
    pass(`${label}: v2 err.code ${err.code}, err.message ${JSON.stringify(err.message)}, statusCode ${err.statusCode}, retryable ${err.retryable}`)
    return err
  }

  // ---- KMS ----
  const ck = await kms.createKey({ Description: 'js sdk v2', Tags: [{ TagKey: 'suite', TagValue: 'v2' }] }).promise()
  shape(KM, 'CreateKey', 'v2 CreateKey', ['KeyMetadata.KeyId', 'KeyMetadata.Arn', 'KeyMetadata.CreationDate'])
  const md = ck.KeyMetadata
  need(md.CreationDate instanceof Date && md.Arn === `arn:aws:kms:${region}:${account}:key/${md.KeyId}` && md.KeyState === 'Enabled',
    `v2 CreateKey: ${JSON.stringify(md)}`)
  await kms.createAlias({ AliasName: 'alias/js-v2', TargetKeyId: md.KeyId }).promise()
  const dk = await kms.describeKey({ KeyId: 'alias/js-v2' }).promise()
  shape(KM, 'DescribeKey', 'v2 DescribeKey')
  need(dk.KeyMetadata.KeyId === md.KeyId, 'v2 DescribeKey by alias: another key')
  pass('v2 CreateKey (CreationDate a Date), CreateAlias, DescribeKey by alias name')

  const pt = Buffer.from('JS SDK v2 plaintext \u00e9')
  const ctx = { app: 'js-v2' }
  const enc = await kms.encrypt({ KeyId: 'alias/js-v2', Plaintext: pt, EncryptionContext: ctx }).promise()
  shape(KM, 'Encrypt', 'v2 Encrypt', ['CiphertextBlob', 'KeyId'])
  need(Buffer.isBuffer(enc.CiphertextBlob) && enc.KeyId === md.Arn, `v2 Encrypt: ${JSON.stringify(enc)}`)
  const dec = await kms.decrypt({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx }).promise()
  shape(KM, 'Decrypt', 'v2 Decrypt', ['Plaintext', 'KeyId'])
  need(Buffer.isBuffer(dec.Plaintext) && dec.Plaintext.equals(pt), 'v2 Decrypt: plaintext differs')
  const gdk = await kms.generateDataKey({ KeyId: md.KeyId, NumberOfBytes: 48 }).promise()
  shape(KM, 'GenerateDataKey', 'v2 GenerateDataKey')
  need(gdk.Plaintext.length === 48 && (await kms.decrypt({ CiphertextBlob: gdk.CiphertextBlob }).promise()).Plaintext.equals(gdk.Plaintext),
    'v2 GenerateDataKey: its blob does not decrypt to its Plaintext')
  const md2 = (await kms.createKey({}).promise()).KeyMetadata
  const re = await kms.reEncrypt({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ctx, DestinationKeyId: md2.Arn }).promise()
  shape(KM, 'ReEncrypt', 'v2 ReEncrypt', ['SourceKeyId', 'KeyId'])
  need((await kms.decrypt({ CiphertextBlob: re.CiphertextBlob }).promise()).Plaintext.equals(pt), 'v2 ReEncrypt: result does not decrypt')
  pass('v2 Encrypt through the alias, Decrypt, GenerateDataKey 48 bytes, ReEncrypt: Buffer blobs, round trips')

  const rsa = (await kms.createKey({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }).promise()).KeyMetadata
  const msg = Buffer.from('signed by Keyfort, verified by Node')
  const sig = await kms.sign({ KeyId: rsa.KeyId, Message: msg, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }).promise()
  shape(KM, 'Sign', 'v2 Sign')
  const pub = await kms.getPublicKey({ KeyId: rsa.KeyId }).promise()
  shape(KM, 'GetPublicKey', 'v2 GetPublicKey', ['PublicKey', 'KeySpec', 'SigningAlgorithms'])
  const key = createPublicKey({ key: pub.PublicKey, format: 'der', type: 'spki' })
  need(cryptoVerify('sha256', msg, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig.Signature),
    'v2 Sign: node:crypto does not verify the RSASSA_PSS_SHA_256 signature with GetPublicKey\'s key')
  const ver = await kms.verify({ KeyId: rsa.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }).promise()
  need(ver.SignatureValid === true, 'v2 Verify: not valid')
  pass('v2 Sign RSA_2048 RSASSA_PSS_SHA_256; node:crypto verifies it with GetPublicKey\'s DER key (salt 32); Verify true')

  const hm = (await kms.createKey({ KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC' }).promise()).KeyMetadata
  const mac = await kms.generateMac({ KeyId: hm.KeyId, Message: msg, MacAlgorithm: 'HMAC_SHA_384' }).promise()
  need(mac.Mac.length === 48 && (await kms.verifyMac({ KeyId: hm.KeyId, Message: msg, Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_384' }).promise()).MacValid,
    'v2 GenerateMac/VerifyMac')
  pass('v2 GenerateMac/VerifyMac HMAC_384')

  await kms.tagResource({ KeyId: md.KeyId, Tags: [{ TagKey: 'team', TagValue: 'blue' }] }).promise()
  const tags = await kms.listResourceTags({ KeyId: md.KeyId }).promise()
  shape(KM, 'ListResourceTags', 'v2 ListResourceTags')
  need(JSON.stringify(tags.Tags.map((t) => t.TagKey).sort()) === '["suite","team"]', `v2 ListResourceTags: ${JSON.stringify(tags.Tags)}`)
  await kms.enableKeyRotation({ KeyId: md.KeyId }).promise()
  const rs = await kms.getKeyRotationStatus({ KeyId: md.KeyId }).promise()
  shape(KM, 'GetKeyRotationStatus', 'v2 GetKeyRotationStatus', ['KeyRotationEnabled', 'RotationPeriodInDays', 'NextRotationDate'])
  need(rs.KeyRotationEnabled === true && rs.NextRotationDate instanceof Date, `v2 GetKeyRotationStatus: ${JSON.stringify(rs)}`)
  await kms.rotateKeyOnDemand({ KeyId: md.KeyId }).promise()
  const rot = await kms.listKeyRotations({ KeyId: md.KeyId }).promise()
  shape(KM, 'ListKeyRotations', 'v2 ListKeyRotations')
  need(rot.Rotations.length >= 1 && rot.Rotations.every((r) => r.RotationDate instanceof Date), `v2 ListKeyRotations: ${JSON.stringify(rot)}`)
  need((await kms.decrypt({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx }).promise()).Plaintext.equals(pt), 'v2: decrypt after rotation')
  pass('v2 TagResource/ListResourceTags, EnableKeyRotation/GetKeyRotationStatus (dates as Date), RotateKeyOnDemand/ListKeyRotations; old ciphertext decrypts')

  const seen = new Set(); let marker; let pages = 0
  do {
    const page = await kms.listKeys({ Limit: 2, Marker: marker }).promise()
    shape(KM, 'ListKeys', `v2 ListKeys page ${pages + 1}`)
    for (const k of page.Keys) { need(!seen.has(k.KeyId), `v2 ListKeys: ${k.KeyId} twice`); seen.add(k.KeyId) }
    marker = page.Truncated ? page.NextMarker : undefined
    need(++pages < 200, 'v2 ListKeys: too many pages')
  } while (marker)
  need(seen.has(md.KeyId) && seen.has(hm.KeyId) && pages >= 3, `v2 ListKeys: ${seen.size} keys in ${pages} pages`)
  pass(`v2 ListKeys Limit 2: ${seen.size} keys in ${pages} pages`)

  const cks = await kms.describeCustomKeyStores({}).promise()
  shape(KM, 'DescribeCustomKeyStores', 'v2 DescribeCustomKeyStores', ['CustomKeyStores', 'Truncated'])
  need(Array.isArray(cks.CustomKeyStores) && cks.CustomKeyStores.length === 0 && cks.Truncated === false, `v2 DescribeCustomKeyStores: ${JSON.stringify(cks)}`)
  pass('v2 DescribeCustomKeyStores: an empty list')

  const missing = '11111111-2222-3333-4444-555555555555'
  await v2err(kms.describeKey({ KeyId: missing }).promise(), 'NotFoundException',
    `Key 'arn:aws:kms:${region}:${account}:key/${missing}' does not exist`, 400, 'v2 DescribeKey of an unknown key')
  await v2err(kms.decrypt({ CiphertextBlob: Buffer.from('not a ciphertext blob at all') }).promise(), 'InvalidCiphertextException', '', 400, 'v2 Decrypt of garbage')
  await v2err(kms.encrypt({ KeyId: md.KeyId, Plaintext: randomBytes(4097) }).promise(), 'ValidationException',
    "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096", 400, 'v2 Encrypt of 4097 bytes')
  await v2err(kms.decrypt({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx, KeyId: md2.KeyId }).promise(), 'IncorrectKeyException',
    'The key ID in the request does not identify a CMK that can perform this operation.', 400, 'v2 Decrypt naming another key')
  await v2err(kms.getParametersForImport({ KeyId: md.KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }).promise(),
    'UnsupportedOperationException', `${md.Arn} origin is AWS_KMS which is not valid for this operation.`, 400, 'v2 GetParametersForImport')
  await kms.disableKey({ KeyId: md2.KeyId }).promise()
  await v2err(kms.encrypt({ KeyId: md2.KeyId, Plaintext: pt }).promise(), 'DisabledException', `${md2.Arn} is disabled.`, 400, 'v2 Encrypt with a disabled key')

  // ---- Secrets Manager ----
  const name = `js-v2/${randomBytes(4).toString('hex')}`
  const cs = await sm.createSecret({ Name: name, SecretString: '{"user":"app","password":"v1"}', Description: 'js v2' }).promise()
  shape(SM, 'CreateSecret', 'v2 CreateSecret', ['ARN', 'Name', 'VersionId'])
  const g1 = await sm.getSecretValue({ SecretId: name }).promise()
  shape(SM, 'GetSecretValue', 'v2 GetSecretValue', ['ARN', 'Name', 'VersionId', 'SecretString', 'VersionStages', 'CreatedDate'])
  need(g1.SecretString === '{"user":"app","password":"v1"}' && g1.CreatedDate instanceof Date && g1.VersionId === cs.VersionId, `v2 GetSecretValue: ${JSON.stringify(g1)}`)
  const bin = randomBytes(300)
  const pv = await sm.putSecretValue({ SecretId: cs.ARN, SecretBinary: bin }).promise()
  shape(SM, 'PutSecretValue', 'v2 PutSecretValue', ['ARN', 'VersionId', 'VersionStages'])
  const g2 = await sm.getSecretValue({ SecretId: name }).promise()
  need(Buffer.isBuffer(g2.SecretBinary) && g2.SecretBinary.equals(bin) && g2.VersionId === pv.VersionId, 'v2 GetSecretValue binary differs')
  const prev = await sm.getSecretValue({ SecretId: name, VersionStage: 'AWSPREVIOUS' }).promise()
  need(prev.VersionId === cs.VersionId && prev.SecretString.includes('v1'), 'v2 GetSecretValue AWSPREVIOUS')
  pass('v2 CreateSecret, GetSecretValue (CreatedDate a Date), PutSecretValue SecretBinary (a Buffer back), AWSPREVIOUS')

  const ds = await sm.describeSecret({ SecretId: name }).promise()
  shape(SM, 'DescribeSecret', 'v2 DescribeSecret', ['ARN', 'Name', 'VersionIdsToStages', 'CreatedDate'])
  need(ds.VersionIdsToStages[pv.VersionId].includes('AWSCURRENT') && ds.CreatedDate instanceof Date, `v2 DescribeSecret: ${JSON.stringify(ds)}`)
  const vids = await sm.listSecretVersionIds({ SecretId: name }).promise()
  shape(SM, 'ListSecretVersionIds', 'v2 ListSecretVersionIds')
  need(vids.Versions.length === 2, `v2 ListSecretVersionIds: ${JSON.stringify(vids)}`)
  await sm.tagResource({ SecretId: name, Tags: [{ Key: 'team', Value: 'blue' }] }).promise()
  const ls = await sm.listSecrets({ Filters: [{ Key: 'tag-key', Values: ['team'] }, { Key: 'name', Values: ['js-v2/'] }] }).promise()
  shape(SM, 'ListSecrets', 'v2 ListSecrets')
  need(ls.SecretList.some((s) => s.Name === name), `v2 ListSecrets: ${JSON.stringify(ls.SecretList.map((s) => s.Name))}`)
  const bg = await sm.batchGetSecretValue({ SecretIdList: [name, 'js-v2/none'] }).promise()
  shape(SM, 'BatchGetSecretValue', 'v2 BatchGetSecretValue')
  need(bg.SecretValues.length === 1 && bg.Errors.length === 1 && bg.Errors[0].ErrorCode === 'ResourceNotFoundException', `v2 BatchGetSecretValue: ${JSON.stringify(bg.Errors)}`)
  const rp = await sm.getRandomPassword({ PasswordLength: 40, ExcludePunctuation: true }).promise()
  need(/^[A-Za-z0-9]{40}$/.test(rp.RandomPassword), 'v2 GetRandomPassword')
  pass('v2 DescribeSecret, ListSecretVersionIds, TagResource, ListSecrets with filters, BatchGetSecretValue (one found, one error), GetRandomPassword')

  await v2err(sm.createSecret({ Name: name, SecretString: 'x' }).promise(), 'ResourceExistsException', undefined, 400, 'v2 CreateSecret of an existing name')
  await v2err(sm.getSecretValue({ SecretId: 'js-v2/none' }).promise(), 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.", 400, 'v2 GetSecretValue of an unknown secret')
  await sm.deleteSecret({ SecretId: name, RecoveryWindowInDays: 7 }).promise()
  await v2err(sm.getSecretValue({ SecretId: name }).promise(), 'InvalidRequestException',
    "You can't perform this operation on the secret because it was marked for deletion.", 400, 'v2 GetSecretValue of a secret scheduled for deletion')
  await sm.restoreSecret({ SecretId: name }).promise()
  need((await sm.getSecretValue({ SecretId: name }).promise()).SecretBinary.equals(bin), 'v2 after RestoreSecret')
  pass('v2 DeleteSecret (7 days), RestoreSecret, the value back')

  const signed = wire.slice(start).filter((w) => w.signed).map((w) => w.signed)
  pass(`v2 signed ${signed.length} requests; its SignedHeaders: ${[...new Set(signed)].join(' | ')}`)
}
