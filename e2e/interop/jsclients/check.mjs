// Keyfort interop check: the AWS Encryption SDK for JavaScript
// (@aws-crypto/client-node), the AWS SDK for JavaScript v3 (client-kms,
// client-secrets-manager) and v2 (aws-sdk, v2.mjs) against a Keyfort server. Run by ../jsclients.sh,
// which starts the server and sets:
//
//   KF_ENDPOINT  http://127.0.0.1:PORT
//   KF_MODELS    directory holding kms.json and secretsmanager.json (the
//                botocore service-2 models, decompressed)
//
// KF_STEPS (esdk,kms,import,sm,v2, then xks when KF_XKS_ENDPOINT is set, by
// default) picks the parts to run; KF_DUMP=FILE writes every response to FILE
// as JSON lines. The xks step (an external key store) needs the XKS proxies
// jsclients.sh starts (gov1xks.py): KF_XKS_ENDPOINT and KF_XKS_PATH (the
// first proxy's URI endpoint and path), KF_XKS_ENDPOINT2 and KF_XKS_PATH2
// (the second's), KF_XKS_KEY (the first proxy's external key),
// KF_XKS_ACCESS_KEY_ID and KF_XKS_SECRET (the proxies' credential). KF_ACCESS_KEY_ID and
// KF_SECRET_ACCESS_KEY are the key every request is signed with
// (AKIDEXAMPLE/anything by default: dev auth checks no signature);
// KF_STRICT=1 (the server verifies signatures and knows that key) first runs
// the strict step: a wrong secret, an unknown access key and a skewed clock
// are refused, and with KF_CN_ACCESS_KEY_ID (the aws-cn user's key, the
// same secret) a key outside its partition; with KF_ROLE_ACCESS_KEY_ID,
// KF_ROLE_SECRET_ACCESS_KEY and KF_ROLE_SESSION_TOKEN (a role session's
// temporary credentials, the caller KF_ROLE_SESSION_ARN) it also checks
// requests with a session token.
//
// Prints "PASS: ..." per check, "DEVIATION: ..." where Keyfort answers
// differently from what AWS documents in a way these clients expose, and
// "FAIL: ..." (then exits 1) when a check fails. Exit 0 all passed, 3 all
// passed with deviations.
import { readFileSync, writeFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { randomBytes, createCipheriv, publicEncrypt, createPublicKey, generateKeyPairSync, createVerify, constants as cryptoConstants } from 'node:crypto'
import { buildClient, CommitmentPolicy, KmsKeyringNode, getClient } from '@aws-crypto/client-node'
import {
  KMS, KMSClient, CreateKeyCommand, DescribeKeyCommand, EncryptCommand, DecryptCommand,
  GenerateDataKeyCommand, ReEncryptCommand, SignCommand, VerifyCommand, GenerateMacCommand,
  VerifyMacCommand, ListKeysCommand, CreateAliasCommand, DisableKeyCommand, paginateListKeys,
  GetParametersForImportCommand, ImportKeyMaterialCommand, DeleteImportedKeyMaterialCommand,
  ListKeyRotationsCommand, ReplicateKeyCommand, UpdatePrimaryRegionCommand,
  CreateCustomKeyStoreCommand, DescribeCustomKeyStoresCommand, ConnectCustomKeyStoreCommand,
  DisconnectCustomKeyStoreCommand, UpdateCustomKeyStoreCommand, DeleteCustomKeyStoreCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms'
import {
  SecretsManagerClient, CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand,
  ListSecretsCommand, DescribeSecretCommand, DeleteSecretCommand, BatchGetSecretValueCommand,
  paginateListSecrets,
} from '@aws-sdk/client-secrets-manager'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { v2Step } from './v2.mjs'

const endpoint = process.env.KF_ENDPOINT
const models = process.env.KF_MODELS
if (!endpoint || !models) {
  console.error('FAIL: KF_ENDPOINT and KF_MODELS must be set (run ../jsclients.sh)')
  process.exit(1)
}
const region = 'us-east-1'
const account = '123456789012'
const credentials = {
  accessKeyId: process.env.KF_ACCESS_KEY_ID || 'AKIDEXAMPLE',
  secretAccessKey: process.env.KF_SECRET_ACCESS_KEY || 'anything',
}
const kmsModel = JSON.parse(readFileSync(`${models}/kms.json`, 'utf8'))
const smModel = JSON.parse(readFileSync(`${models}/secretsmanager.json`, 'utf8'))

const deviations = []
const pass = (m) => console.log(`PASS: ${m}`)
const deviation = (m) => { deviations.push(m); console.log(`DEVIATION: ${m}`) }
class CheckFailed extends Error {}
const fail = (m) => { throw new CheckFailed(m) }
const need = (cond, m) => { if (!cond) fail(m) }

// ---- the wire: every response's status, headers and raw body ----------------
// A request handler that wraps the SDK's own NodeHttpHandler, keeps each raw
// response (the SDK's deserializers drop members they do not know, so the
// model check below reads the wire), and hands the SDK the same bytes.
const wire = []
class RecordingHandler {
  constructor () { this.inner = new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 60000 }) }
  async handle (request, options) {
    const out = await this.inner.handle(request, options)
    const chunks = []
    for await (const c of out.response.body) chunks.push(c)
    const body = Buffer.concat(chunks)
    // What the SDK sent: the headers its signature covers, the session token.
    const h = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]))
    const signed = /SignedHeaders=([^,\s]+)/.exec(h.authorization || '')?.[1]
    wire.push({ target: request.headers['x-amz-target'], status: out.response.statusCode, headers: out.response.headers, body, signed, token: h['x-amz-security-token'] })
    out.response.body = Readable.from([body])
    return out
  }
  updateHttpClientConfig (k, v) { this.inner.updateHttpClientConfig(k, v) }
  httpHandlerConfigs () { return this.inner.httpHandlerConfigs() }
  destroy () { this.inner.destroy() }
}
const requestHandler = new RecordingHandler()
const clientConfig = { region, endpoint, credentials, requestHandler, maxAttempts: 1 }
const kms = new KMSClient(clientConfig)
const sm = new SecretsManagerClient(clientConfig)

// lastWire(op): the last recorded response of an operation (X-Amz-Target suffix).
function lastWire (op) {
  for (let i = wire.length - 1; i >= 0; i--) {
    if (wire[i].target && wire[i].target.endsWith(`.${op}`)) return wire[i]
  }
  fail(`no response recorded for ${op}`)
}

// ---- the botocore model: types of what the wire carries ---------------------
// checkRaw walks a raw JSON value against a model shape and returns problems:
// members the model does not have, and values of the wrong JSON type
// (awsJson1_1: timestamps are epoch seconds, blobs base64 strings).
function checkRaw (model, shapeName, v, path, out) {
  const s = model.shapes[shapeName]
  const bad = (what) => out.push(`${path}: ${what} (${JSON.stringify(v)?.slice(0, 60)}), model shape ${shapeName} is ${s.type}`)
  switch (s.type) {
    case 'structure':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not an object')
      for (const [k, x] of Object.entries(v)) {
        const m = s.members[k]
        if (!m) { out.push(`${path}.${k}: not a member of ${shapeName} in the model`); continue }
        checkRaw(model, m.shape, x, `${path}.${k}`, out)
      }
      for (const r of s.required || []) if (!(r in v)) out.push(`${path}.${r}: required by the model, missing`)
      return
    case 'list':
      if (!Array.isArray(v)) return bad('not an array')
      v.forEach((x, i) => checkRaw(model, s.member.shape, x, `${path}[${i}]`, out))
      return
    case 'map':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('not an object')
      for (const [k, x] of Object.entries(v)) checkRaw(model, s.value.shape, x, `${path}[${k}]`, out)
      return
    case 'string':
      if (typeof v !== 'string') return bad('not a string')
      if (s.enum && !s.enum.includes(v)) return bad(`not one of the enum ${s.enum.join('|')}`)
      return
    case 'blob':
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return bad('not a base64 string')
      return
    case 'timestamp':
      if (typeof v !== 'number') return bad('not epoch seconds (a JSON number)')
      return
    case 'integer': case 'long':
      if (!Number.isInteger(v)) return bad('not an integer')
      return
    case 'boolean':
      if (typeof v !== 'boolean') return bad('not a boolean')
      return
    case 'double': case 'float':
      if (typeof v !== 'number') return bad('not a number')
      return
    default:
      out.push(`${path}: model type ${s.type} not handled by this check`)
  }
}

// shape(model, op, label, present) checks the last response of op on the wire:
// status 200, the awsJson content type, a request id, every member's type
// against the model, and the members listed in `present` (dotted paths; AWS's
// documented response for this call) are there.
let shapesChecked = 0
function shape (model, op, label, present = []) {
  shapesChecked++
  const w = lastWire(op)
  need(w.status === 200, `${label}: HTTP ${w.status}`)
  const problems = []
  const ct = w.headers['content-type']
  if (ct !== 'application/x-amz-json-1.1') problems.push(`Content-Type ${JSON.stringify(ct)}, AWS sends application/x-amz-json-1.1`)
  if (!w.headers['x-amzn-requestid']) problems.push('no x-amzn-RequestId header ($metadata.requestId is empty)')
  const raw = JSON.parse(w.body.toString('utf8') || '{}')
  checkRaw(model, model.operations[op].output.shape, raw, op, problems)
  for (const p of present) {
    let v = raw
    for (const k of p.split('.')) v = v == null ? undefined : v[k]
    if (v === undefined || v === null) problems.push(`${op}.${p}: missing; AWS returns it here`)
  }
  if (problems.length) for (const p of problems) deviation(`${label}: ${p}`)
  return raw
}

// apiError(promise) awaits a call that must fail and returns the SDK's error.
async function apiError (p, label) {
  try { await p } catch (e) { return e }
  fail(`${label}: succeeded, want an error`)
}

// wantError checks the JS SDK error's name, message and HTTP status, and the
// raw error body against AWS's (__type and message only).
function wantError (e, name, message, status, label, op) {
  need(e.name === name, `${label}: error ${e.name}: ${e.message}, want ${name}`)
  need(e.$metadata?.httpStatusCode === status, `${label}: $metadata.httpStatusCode ${e.$metadata?.httpStatusCode}, want ${status}`)
  need(e.$fault === (status < 500 ? 'client' : 'server'), `${label}: $fault ${e.$fault}`)
  const w = lastWire(op)
  const body = JSON.parse(w.body.toString('utf8'))
  // The models name the member "message" in KMS's exceptions and "Message"
  // in Secrets Manager's. The JS SDK moves either into e.message and deletes
  // e.Message (@smithy/core decorateServiceException): its own behaviour.
  const member = w.target.startsWith('secretsmanager.') ? 'Message' : 'message'
  if (message && body[member] !== message) deviation(`${label}: body member ${member} ${JSON.stringify(body[member])}, want ${JSON.stringify(message)}`)
  need(e.Message === undefined, `${label}: e.Message is set; the JS SDK deletes it`)
  let note = ''
  if (message === '') {
    // AWS answers this error without a message: no message member on the
    // wire ({"__type":"InvalidCiphertextException"}, aws-nitro-enclaves-sdk-c
    // issue 68; botocore shows ''). The JS SDK then shows "UnknownError", its
    // own fill-in, both for a missing and for an empty message
    // (@aws-sdk/core protocols).
    if ('message' in body || 'Message' in body) deviation(`${label}: ${name} carries a message member ${JSON.stringify(body.message ?? body.Message)}, AWS sends none`)
    else if (e.message !== 'UnknownError') fail(`${label}: message ${JSON.stringify(e.message)} for an error without one, the JS SDK says "UnknownError"`)
    note = ' (no message member on the wire; "UnknownError" is the JS SDK\'s own fill-in)'
  } else if (message !== undefined && e.message !== message) {
    deviation(`${label}: ${name} message ${JSON.stringify(e.message)}, AWS says ${JSON.stringify(message)}`)
  }
  const type = String(body.__type || '').split('#').pop()
  if (type !== name) deviation(`${label}: __type ${JSON.stringify(body.__type)}, want ${name}`)
  if (w.headers['content-type'] !== 'application/x-amz-json-1.1') deviation(`${label}: error Content-Type ${JSON.stringify(w.headers['content-type'])}`)
  if (!e.$metadata?.requestId) deviation(`${label}: $metadata.requestId empty (no x-amzn-RequestId header)`)
  pass(`${label}: ${name} (HTTP ${status}) ${JSON.stringify(e.message)}${note}, body ${w.body.toString('utf8')}`)
}

const bytesEqual = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0
const isBytes = (x) => x instanceof Uint8Array

const symKeyMeta = ['AWSAccountId', 'KeyId', 'Arn', 'CreationDate', 'Enabled', 'Description', 'KeyUsage', 'KeyState',
  'Origin', 'KeyManager', 'CustomerMasterKeySpec', 'KeySpec', 'EncryptionAlgorithms', 'MultiRegion'].map((k) => `KeyMetadata.${k}`)

// ---- 1-2. Encryption SDK ----------------------------------------------------
async function esdk () {
  console.log('== Encryption SDK for JavaScript (@aws-crypto/client-node)')
  const mk = async (desc, alias) => {
    const { KeyMetadata: md } = await kms.send(new CreateKeyCommand({ Description: desc }))
    if (alias) await kms.send(new CreateAliasCommand({ AliasName: `alias/${alias}`, TargetKeyId: md.KeyId }))
    return md
  }
  const gen = await mk('esdk generator', 'esdk-gen')
  const k2 = await mk('esdk second', null)
  const k3 = await mk('esdk third', 'esdk-third')
  const aliasArn = (a) => `arn:aws:kms:${region}:${account}:alias/${a}`

  const { encrypt, decrypt, encryptStream, decryptStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  // The keyring's KMS clients: the region comes from each key ARN.
  const clientProvider = getClient(KMS, { endpoint, credentials, requestHandler, maxAttempts: 1 })

  // generator by alias ARN (the SDK accepts it: validAwsKmsIdentifier), the
  // second key by key ARN, the third by alias ARN.
  const encKeyring = new KmsKeyringNode({ clientProvider, generatorKeyId: aliasArn('esdk-gen'), keyIds: [k2.Arn, aliasArn('esdk-third')] })
  const context = { purpose: 'keyfort interop', tenant: 'esdk' }
  const plaintext = Buffer.from(`Keyfort ESDK interop ${new Date().toISOString()}`)
  const { result, messageHeader } = await encrypt(encKeyring, plaintext, { encryptionContext: context })
  const edks = messageHeader.encryptedDataKeys
  need(edks.length === 3, `encrypt: ${edks.length} encrypted data keys, want 3`)
  const infos = edks.map((e) => e.providerInfo)
  need(infos[0] === gen.Arn && infos[1] === k2.Arn && infos[2] === k3.Arn,
    `encrypt: EDK provider infos ${JSON.stringify(infos)}, want the key ARNs ${[gen.Arn, k2.Arn, k3.Arn]}`)
  pass(`ESDK encrypt, KmsKeyringNode generator alias ARN + key ARN + alias ARN: ${result.length} byte message, 3 EDKs naming the key ARNs (GenerateDataKey, Encrypt x2)`)

  const checkContext = (hdr, label) => {
    for (const [k, v] of Object.entries(context)) need(hdr.encryptionContext[k] === v, `${label}: context ${k}=${hdr.encryptionContext[k]}, want ${v}`)
  }
  const onlySecond = new KmsKeyringNode({ clientProvider, keyIds: [k2.Arn] })
  const d2 = await decrypt(onlySecond, result)
  need(bytesEqual(d2.plaintext, plaintext), 'decrypt (second key only): plaintext differs')
  checkContext(d2.messageHeader, 'decrypt (second key only)')
  pass(`ESDK decrypt with a keyring holding only the second key (${k2.KeyId}): plaintext and encryption context back`)

  const discovery = new KmsKeyringNode({ clientProvider, discovery: true, discoveryFilter: { accountIDs: [account], partition: 'aws' } })
  const dd = await decrypt(discovery, result)
  need(bytesEqual(dd.plaintext, plaintext), 'decrypt (discovery): plaintext differs')
  checkContext(dd.messageHeader, 'decrypt (discovery)')
  pass('ESDK decrypt with a discovery keyring (filter: account 123456789012, partition aws): plaintext and encryption context back')

  // Tampered body: the SDK's own authentication refuses it (no KMS involved
  // after the data key).
  const t1 = Buffer.from(result)
  t1[t1.length - 120] ^= 0x01
  const e1 = await apiError(decrypt(onlySecond, t1), 'decrypt of a tampered body')
  pass(`ESDK decrypt refuses a message with a flipped body byte: ${String(e1.message).split('\n')[0]}`)
  // Tampered encrypted data key: KMS Decrypt refuses it (InvalidCiphertextException
  // from Keyfort, wrapped by the keyring).
  const edk2 = Buffer.from(edks[1].encryptedDataKey)
  const at = Buffer.from(result).indexOf(edk2)
  need(at > 0, 'could not find the second EDK in the message')
  const t2 = Buffer.from(result)
  t2[at + edk2.length - 5] ^= 0x01
  const e2 = await apiError(decrypt(onlySecond, t2), 'decrypt of a tampered EDK')
  need(/InvalidCiphertextException/.test(e2.message), `tampered EDK: ${e2.message}, want a wrapped InvalidCiphertextException`)
  pass(`ESDK decrypt refuses a message whose EDK for the second key has a flipped byte: ${e2.message.split('\n').slice(0, 3).map((s) => s.trim()).filter(Boolean).join(' | ')}`)

  // Streaming, several MB.
  const big = randomBytes(6 * 1024 * 1024 + 12345)
  const encChunks = []
  await pipeline(Readable.from([big.subarray(0, 3e6), big.subarray(3e6)]),
    encryptStream(encKeyring, { encryptionContext: context, frameLength: 64 * 1024 }),
    async function * (src) { for await (const c of src) encChunks.push(c) })
  const bigMsg = Buffer.concat(encChunks)
  const decChunks = []
  let hdr = null
  const ds = decryptStream(onlySecond).once('MessageHeader', (h) => { hdr = h })
  await pipeline(Readable.from([bigMsg]), ds, async function * (src) { for await (const c of src) decChunks.push(c) })
  need(bytesEqual(Buffer.concat(decChunks), big), 'stream: decrypted bytes differ')
  need(hdr, 'stream: no MessageHeader event')
  checkContext(hdr, 'stream')
  pass(`ESDK encryptStream/decryptStream of ${big.length} bytes (64 KiB frames, ${bigMsg.length} byte message) round trip, context back`)

  // 2. A keyring whose only key is disabled.
  const dis = await mk('esdk disabled', null)
  const disRing = new KmsKeyringNode({ clientProvider, generatorKeyId: dis.Arn })
  const { result: disMsg } = await encrypt(disRing, plaintext, { encryptionContext: context })
  await kms.send(new DisableKeyCommand({ KeyId: dis.KeyId }))
  const e3 = await apiError(decrypt(disRing, disMsg), 'decrypt with a disabled key')
  need(/DisabledException/.test(e3.message), `disabled key: ${e3.message}, want a wrapped DisabledException`)
  const m3 = /DisabledException: ([^\n]*)/.exec(e3.message)
  const want3 = `${dis.Arn} is disabled.`
  if (!m3 || m3[1] !== want3) deviation(`ESDK disabled key: DisabledException message ${JSON.stringify(m3?.[1])}, AWS says "${want3}"`)
  pass(`ESDK decrypt with a keyring whose only key is disabled fails: ${e3.message.split('\n').slice(0, 3).map((s) => s.trim()).filter(Boolean).join(' | ')}`)
  const e4 = await apiError(encrypt(disRing, plaintext, { encryptionContext: context }), 'encrypt with a disabled key')
  pass(`ESDK encrypt with a disabled generator fails: ${e4.name}: ${e4.message}`)
}

// ---- 3. JS SDK v3 KMS -------------------------------------------------------
async function jsKms () {
  console.log('== AWS SDK for JavaScript v3: KMS')
  const M = kmsModel
  const ck = await kms.send(new CreateKeyCommand({ Description: 'js sdk symmetric', Tags: [{ TagKey: 'suite', TagValue: 'js' }] }))
  shape(M, 'CreateKey', 'CreateKey SYMMETRIC_DEFAULT', symKeyMeta)
  const md = ck.KeyMetadata
  need(md.CreationDate instanceof Date && !isNaN(md.CreationDate), 'CreateKey: CreationDate is not a Date')
  need(md.Arn === `arn:aws:kms:${region}:${account}:key/${md.KeyId}`, `CreateKey: Arn ${md.Arn}`)
  need(md.KeySpec === 'SYMMETRIC_DEFAULT' && md.KeyUsage === 'ENCRYPT_DECRYPT' && md.KeyState === 'Enabled' && md.Enabled === true,
    `CreateKey: ${JSON.stringify(md)}`)
  pass(`CreateKey: ${md.KeyId} SYMMETRIC_DEFAULT ENCRYPT_DECRYPT Enabled, CreationDate a Date, $metadata.requestId ${ck.$metadata.requestId}`)

  const dk = await kms.send(new DescribeKeyCommand({ KeyId: md.Arn }))
  shape(M, 'DescribeKey', 'DescribeKey', symKeyMeta)
  need(dk.KeyMetadata.KeyId === md.KeyId && dk.KeyMetadata.CreationDate.getTime() === md.CreationDate.getTime(), 'DescribeKey: differs from CreateKey')
  need(JSON.stringify(dk.KeyMetadata.EncryptionAlgorithms) === '["SYMMETRIC_DEFAULT"]', `DescribeKey: EncryptionAlgorithms ${dk.KeyMetadata.EncryptionAlgorithms}`)
  pass('DescribeKey by ARN: same key, EncryptionAlgorithms [SYMMETRIC_DEFAULT]')

  const pt = new TextEncoder().encode('JS SDK v3 plaintext \u00e9\u00e8')
  const ctx = { app: 'jsclients' }
  const enc = await kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: pt, EncryptionContext: ctx }))
  shape(M, 'Encrypt', 'Encrypt', ['CiphertextBlob', 'KeyId', 'EncryptionAlgorithm'])
  need(isBytes(enc.CiphertextBlob) && enc.KeyId === md.Arn && enc.EncryptionAlgorithm === 'SYMMETRIC_DEFAULT', `Encrypt: ${JSON.stringify(enc)}`)
  const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx }))
  shape(M, 'Decrypt', 'Decrypt', ['KeyId', 'Plaintext', 'EncryptionAlgorithm'])
  need(isBytes(dec.Plaintext) && bytesEqual(dec.Plaintext, pt) && dec.KeyId === md.Arn, 'Decrypt: plaintext or KeyId differs')
  pass(`Encrypt/Decrypt with Uint8Array blobs: ${enc.CiphertextBlob.length} byte CiphertextBlob, Plaintext back as a Uint8Array, KeyId the key ARN`)

  const gdk = await kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, KeySpec: 'AES_256', EncryptionContext: ctx }))
  shape(M, 'GenerateDataKey', 'GenerateDataKey', ['CiphertextBlob', 'Plaintext', 'KeyId'])
  need(isBytes(gdk.Plaintext) && gdk.Plaintext.length === 32 && isBytes(gdk.CiphertextBlob), 'GenerateDataKey: Plaintext not 32 bytes')
  const gdkBack = await kms.send(new DecryptCommand({ CiphertextBlob: gdk.CiphertextBlob, EncryptionContext: ctx }))
  need(bytesEqual(gdkBack.Plaintext, gdk.Plaintext), 'GenerateDataKey: CiphertextBlob does not decrypt to Plaintext')
  pass('GenerateDataKey AES_256: 32 byte Plaintext, its CiphertextBlob decrypts to it')

  const md2 = (await kms.send(new CreateKeyCommand({ Description: 'js sdk reencrypt target' }))).KeyMetadata
  const re = await kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: ctx, DestinationKeyId: md2.KeyId, DestinationEncryptionContext: { app: 'other' } }))
  shape(M, 'ReEncrypt', 'ReEncrypt', ['CiphertextBlob', 'SourceKeyId', 'KeyId', 'SourceEncryptionAlgorithm', 'DestinationEncryptionAlgorithm'])
  need(re.SourceKeyId === md.Arn && re.KeyId === md2.Arn, `ReEncrypt: SourceKeyId ${re.SourceKeyId} KeyId ${re.KeyId}`)
  const reBack = await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob, EncryptionContext: { app: 'other' } }))
  need(bytesEqual(reBack.Plaintext, pt) && reBack.KeyId === md2.Arn, 'ReEncrypt: result does not decrypt under the new key')
  pass('ReEncrypt to a second key with a new context: SourceKeyId/KeyId the ARNs, decrypts under the second key')

  const ec = (await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata
  shape(M, 'CreateKey', 'CreateKey ECC_NIST_P256', ['KeyMetadata.SigningAlgorithms', 'KeyMetadata.KeySpec'])
  const msg = new TextEncoder().encode('sign me')
  const sig = await kms.send(new SignCommand({ KeyId: ec.KeyId, Message: msg, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }))
  shape(M, 'Sign', 'Sign', ['KeyId', 'Signature', 'SigningAlgorithm'])
  const ver = await kms.send(new VerifyCommand({ KeyId: ec.KeyId, Message: msg, MessageType: 'RAW', Signature: sig.Signature, SigningAlgorithm: 'ECDSA_SHA_256' }))
  shape(M, 'Verify', 'Verify', ['KeyId', 'SignatureValid', 'SigningAlgorithm'])
  need(ver.SignatureValid === true, 'Verify: SignatureValid not true')
  const bad = Uint8Array.from(sig.Signature); bad[bad.length - 1] ^= 1
  const ve = await apiError(kms.send(new VerifyCommand({ KeyId: ec.KeyId, Message: msg, Signature: bad, SigningAlgorithm: 'ECDSA_SHA_256' })), 'Verify bad signature')
  wantError(ve, 'KMSInvalidSignatureException', '', 400, 'Verify of a tampered signature', 'Verify')
  pass(`Sign/Verify ECC_NIST_P256 ECDSA_SHA_256: ${sig.Signature.length} byte DER signature, SignatureValid true`)

  const hm = (await kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata
  shape(M, 'CreateKey', 'CreateKey HMAC_256', ['KeyMetadata.MacAlgorithms'])
  const mac = await kms.send(new GenerateMacCommand({ KeyId: hm.KeyId, Message: msg, MacAlgorithm: 'HMAC_SHA_256' }))
  shape(M, 'GenerateMac', 'GenerateMac', ['Mac', 'MacAlgorithm', 'KeyId'])
  need(isBytes(mac.Mac) && mac.Mac.length === 32, 'GenerateMac: Mac not 32 bytes')
  const vm = await kms.send(new VerifyMacCommand({ KeyId: hm.KeyId, Message: msg, MacAlgorithm: 'HMAC_SHA_256', Mac: mac.Mac }))
  shape(M, 'VerifyMac', 'VerifyMac', ['KeyId', 'MacValid', 'MacAlgorithm'])
  need(vm.MacValid === true, 'VerifyMac: MacValid not true')
  const badMac = Uint8Array.from(mac.Mac); badMac[0] ^= 1
  const vme = await apiError(kms.send(new VerifyMacCommand({ KeyId: hm.KeyId, Message: msg, MacAlgorithm: 'HMAC_SHA_256', Mac: badMac })), 'VerifyMac bad')
  wantError(vme, 'KMSInvalidMacException', '', 400, 'VerifyMac of a tampered MAC', 'VerifyMac')
  pass('GenerateMac/VerifyMac HMAC_256 HMAC_SHA_256: 32 byte Mac, MacValid true')

  // ListKeys paging: Limit 3 by hand, then the paginator.
  const seen = new Set(); let marker; let pages = 0
  do {
    const page = await kms.send(new ListKeysCommand({ Limit: 3, Marker: marker }))
    shape(M, 'ListKeys', `ListKeys page ${pages + 1}`, page.Truncated ? ['Keys', 'Truncated', 'NextMarker'] : ['Keys', 'Truncated'])
    need(page.Keys.length <= 3, `ListKeys: ${page.Keys.length} keys with Limit 3`)
    for (const k of page.Keys) { need(!seen.has(k.KeyId), `ListKeys: ${k.KeyId} twice`); seen.add(k.KeyId) }
    marker = page.Truncated ? page.NextMarker : undefined
    pages++
    need(pages < 100, 'ListKeys: more than 100 pages')
  } while (marker)
  let viaPaginator = 0
  for await (const p of paginateListKeys({ client: kms, pageSize: 4 }, {})) viaPaginator += p.Keys.length
  need(seen.size >= 4 && pages >= 2 && viaPaginator === seen.size, `ListKeys: ${seen.size} by hand, ${viaPaginator} by paginateListKeys`)
  need(seen.has(md.KeyId) && seen.has(ec.KeyId), 'ListKeys: created keys missing')
  pass(`ListKeys Limit 3: ${seen.size} keys in ${pages} pages (Truncated/NextMarker), paginateListKeys agrees`)

  // Plaintext bounds (model: PlaintextType max 4096).
  const p4096 = randomBytes(4096)
  const e4096 = await kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: p4096 }))
  need(bytesEqual((await kms.send(new DecryptCommand({ CiphertextBlob: e4096.CiphertextBlob }))).Plaintext, p4096), 'Encrypt 4096: round trip differs')
  const e4097 = await apiError(kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: randomBytes(4097) })), 'Encrypt 4097')
  wantError(e4097, 'ValidationException', "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096", 400, 'Encrypt of 4097 bytes (4096 round-trips)', 'Encrypt')

  // Errors.
  const g = await apiError(kms.send(new DecryptCommand({ CiphertextBlob: new TextEncoder().encode('definitely not a ciphertext blob') })), 'Decrypt garbage')
  wantError(g, 'InvalidCiphertextException', '', 400, 'Decrypt of garbage', 'Decrypt')
  const missing = '11111111-2222-3333-4444-555555555555'
  const nf = await apiError(kms.send(new DescribeKeyCommand({ KeyId: missing })), 'DescribeKey unknown')
  wantError(nf, 'NotFoundException', `Key 'arn:aws:kms:${region}:${account}:key/${missing}' does not exist`, 400, 'DescribeKey of an unknown key', 'DescribeKey')
  const na = await apiError(kms.send(new EncryptCommand({ KeyId: 'alias/no-such-alias', Plaintext: pt })), 'Encrypt unknown alias')
  wantError(na, 'NotFoundException', `Alias arn:aws:kms:${region}:${account}:alias/no-such-alias is not found.`, 400, 'Encrypt with an unknown alias', 'Encrypt')
  const ik = await apiError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx, KeyId: md2.KeyId })), 'Decrypt wrong key')
  wantError(ik, 'IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.', 400, 'Decrypt naming another key', 'Decrypt')
}

// ---- 3b. JS SDK v3: imported key material and multi-Region keys --------------
// The material is wrapped with node:crypto as AWS's developer guide does with
// openssl: RSA-OAEP with SHA-256 (and MGF1 SHA-256), and for
// RSA_AES_KEY_WRAP_SHA_256 an AES-256 key under RSA-OAEP followed by the
// material under AES key wrap with padding (id-aes256-wrap-pad, RFC 5649).
async function jsImport () {
  console.log('== AWS SDK for JavaScript v3: imported key material, multi-Region keys')
  const M = kmsModel
  const params = async (keyId, alg, spec) => {
    const p = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: alg, WrappingKeySpec: spec }))
    shape(M, 'GetParametersForImport', `GetParametersForImport ${alg} ${spec}`, ['KeyId', 'ImportToken', 'PublicKey', 'ParametersValidTo'])
    need(p.ParametersValidTo instanceof Date && p.ParametersValidTo - Date.now() > 23 * 3600e3, `ParametersValidTo ${p.ParametersValidTo}`)
    return { token: p.ImportToken, pub: createPublicKey({ key: Buffer.from(p.PublicKey), format: 'der', type: 'spki' }) }
  }
  const oaep = (pub, data) => publicEncrypt({ key: pub, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, data)
  const aesWrap = (pub, data) => {
    const kek = randomBytes(32)
    const c = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'))
    return Buffer.concat([oaep(pub, kek), c.update(data), c.final()])
  }

  const md = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', MultiRegion: true, Description: 'js import' }))).KeyMetadata
  shape(M, 'CreateKey', 'CreateKey EXTERNAL MultiRegion', ['KeyMetadata.MultiRegionConfiguration'])
  need(md.KeyState === 'PendingImport' && md.Origin === 'EXTERNAL' && /^mrk-[0-9a-f]{32}$/.test(md.KeyId), `CreateKey: ${JSON.stringify(md)}`)
  const material = randomBytes(32)
  let p = await params(md.KeyId, 'RSAES_OAEP_SHA_256', 'RSA_2048')
  const imp = await kms.send(new ImportKeyMaterialCommand({ KeyId: md.KeyId, ImportToken: p.token, EncryptedKeyMaterial: oaep(p.pub, material),
    ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() + 30 * 86400e3), KeyMaterialDescription: 'js' }))
  shape(M, 'ImportKeyMaterial', 'ImportKeyMaterial', ['KeyId', 'KeyMaterialId'])
  need(imp.KeyId === md.Arn && /^[0-9a-f]{64}$/.test(imp.KeyMaterialId), `ImportKeyMaterial: ${JSON.stringify(imp)}`)
  const enc = await kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: new TextEncoder().encode('imported') }))
  pass(`CreateKey EXTERNAL MultiRegion, GetParametersForImport, ImportKeyMaterial (node:crypto RSA-OAEP SHA-256): KeyMaterialId ${imp.KeyMaterialId.slice(0, 12)}..., Encrypt`)

  const eu = new KMSClient({ ...clientConfig, region: 'eu-west-1' })
  const rep = await kms.send(new ReplicateKeyCommand({ KeyId: md.KeyId, ReplicaRegion: 'eu-west-1' }))
  shape(M, 'ReplicateKey', 'ReplicateKey', ['ReplicaKeyMetadata', 'ReplicaPolicy'])
  const de = await apiError(eu.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob })), 'Decrypt in eu-west-1 before import')
  wantError(de, 'KMSInvalidStateException', `${rep.ReplicaKeyMetadata.Arn} is pending import.`, 400, 'Decrypt by the replica before its import', 'Decrypt')
  const ep = await eu.send(new GetParametersForImportCommand({ KeyId: md.KeyId, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256', WrappingKeySpec: 'RSA_3072' }))
  const epub = createPublicKey({ key: Buffer.from(ep.PublicKey), format: 'der', type: 'spki' })
  await eu.send(new ImportKeyMaterialCommand({ KeyId: md.KeyId, ImportToken: ep.ImportToken, EncryptedKeyMaterial: aesWrap(epub, material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }))
  const dec = await eu.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))
  need(new TextDecoder().decode(dec.Plaintext) === 'imported' && dec.KeyId === rep.ReplicaKeyMetadata.Arn, `Decrypt in eu-west-1: ${dec.KeyId}`)
  const rl = await eu.send(new ListKeyRotationsCommand({ KeyId: md.KeyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }))
  shape(M, 'ListKeyRotations', 'ListKeyRotations ALL_KEY_MATERIAL', ['Rotations', 'Truncated'])
  need(rl.Rotations.length === 1 && rl.Rotations[0].ImportState === 'IMPORTED' && rl.Rotations[0].KeyMaterialDescription === 'js' &&
    rl.Rotations[0].KeyMaterialState === 'CURRENT', `ListKeyRotations: ${JSON.stringify(rl.Rotations)}`)
  pass('ReplicateKey to eu-west-1 (replica PendingImport), the same material imported there with RSA_AES_KEY_WRAP_SHA_256 (node:crypto id-aes256-wrap-pad), the primary\'s ciphertext decrypted there')

  await kms.send(new UpdatePrimaryRegionCommand({ KeyId: md.KeyId, PrimaryRegion: 'eu-west-1' }))
  const d = await eu.send(new DescribeKeyCommand({ KeyId: md.KeyId }))
  need(d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType === 'PRIMARY', `after UpdatePrimaryRegion: ${JSON.stringify(d.KeyMetadata.MultiRegionConfiguration)}`)
  const del = await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: md.KeyId }))
  shape(M, 'DeleteImportedKeyMaterial', 'DeleteImportedKeyMaterial', ['KeyId', 'KeyMaterialId'])
  need(del.KeyMaterialId === imp.KeyMaterialId, `DeleteImportedKeyMaterial: ${JSON.stringify(del)}`)
  const after = await kms.send(new DescribeKeyCommand({ KeyId: md.KeyId }))
  need(after.KeyMetadata.KeyState === 'PendingImport', `us-east-1 after its material was deleted: ${after.KeyMetadata.KeyState}`)
  eu.destroy()

  // An RSA signing key: its PKCS#8 private key from node:crypto, wrapped
  // with RSA_AES_KEY_WRAP_SHA_256; node verifies what KMS signs.
  const rk = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  p = await params(rk.KeyId, 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_4096')
  await kms.send(new ImportKeyMaterialCommand({ KeyId: rk.KeyId, ImportToken: p.token,
    EncryptedKeyMaterial: aesWrap(p.pub, privateKey.export({ format: 'der', type: 'pkcs8' })), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }))
  const msg = new TextEncoder().encode('signed by an imported RSA key')
  const sig = await kms.send(new SignCommand({ KeyId: rk.KeyId, Message: msg, MessageType: 'RAW', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }))
  const v = createVerify('sha256'); v.update(msg)
  need(v.verify(publicKey, Buffer.from(sig.Signature)), 'the signature does not verify with the node-made key')
  pass('RSA_2048 signing key from node:crypto imported (RSA_AES_KEY_WRAP_SHA_256, RSA_4096 wrapping key); node:crypto verifies its RSASSA_PKCS1_V1_5_SHA_256 signature')
}

// ---- 3c. JS SDK v3: an external key store (XKS) ------------------------------
// The custom key store operations against real XKS proxies (gov1xks.py's,
// e2e/smoke/xksproxy.py): a store created, described, connected, a KMS key
// in it whose Encrypt/Decrypt the proxy takes part in, a rename, the key
// scheduled for deletion, the store disconnected and its deletion refused;
// a second store on the second proxy created and deleted. As
// gov1check/xks.go does with the Go SDK v1. Runs after v2 (whose
// DescribeCustomKeyStores wants an account without stores): the first store
// stays, its key pending deletion.
async function jsXks () {
  const x = {
    endpoint: process.env.KF_XKS_ENDPOINT, path: process.env.KF_XKS_PATH,
    endpoint2: process.env.KF_XKS_ENDPOINT2, path2: process.env.KF_XKS_PATH2,
    keyID: process.env.KF_XKS_KEY, accessKey: process.env.KF_XKS_ACCESS_KEY_ID, secret: process.env.KF_XKS_SECRET,
  }
  for (const [k, v] of Object.entries(x)) need(v, `xks step: ${k} not set (KF_XKS_*: run ../jsclients.sh)`)
  console.log(`== AWS SDK for JavaScript v3: KMS external key store (XKS proxy ${x.endpoint}${x.path})`)
  const M = kmsModel
  const storeIdRE = /^cks-[0-9a-f]{17}$/
  const storeInput = (name, ep, path) => ({
    CustomKeyStoreName: name, CustomKeyStoreType: 'EXTERNAL_KEY_STORE', XksProxyConnectivity: 'PUBLIC_ENDPOINT',
    XksProxyUriEndpoint: ep, XksProxyUriPath: path,
    XksProxyAuthenticationCredential: { AccessKeyId: x.accessKey, RawSecretAccessKey: x.secret },
  })
  const entryMembers = ['CustomKeyStoreId', 'CustomKeyStoreName', 'CustomKeyStoreType', 'ConnectionState', 'CreationDate',
    'XksProxyConfiguration.Connectivity', 'XksProxyConfiguration.AccessKeyId', 'XksProxyConfiguration.UriEndpoint', 'XksProxyConfiguration.UriPath']
  // describe(label, input, n): DescribeCustomKeyStores, its wire checked
  // against the model; n entries, not truncated.
  const describe = async (label, input, n) => {
    const out = await kms.send(new DescribeCustomKeyStoresCommand(input))
    shape(M, 'DescribeCustomKeyStores', `DescribeCustomKeyStores ${label}`,
      ['CustomKeyStores', 'Truncated', ...Array.from({ length: n }, (_, i) => entryMembers.map((m) => `CustomKeyStores.${i}.${m}`)).flat()])
    need(out.CustomKeyStores.length === n && out.Truncated === false, `DescribeCustomKeyStores ${label}: ${JSON.stringify(out.CustomKeyStores)}, Truncated ${out.Truncated}; want ${n}`)
    return out.CustomKeyStores
  }
  // wantStore checks an entry as the SDK gives it: an external key store,
  // CreationDate a Date of now, no secret anywhere on the wire.
  const wantStore = (label, e, id, name, state, ep, path) => {
    const p = e.XksProxyConfiguration
    need(e.CustomKeyStoreId === id && e.CustomKeyStoreName === name && e.CustomKeyStoreType === 'EXTERNAL_KEY_STORE' &&
      e.ConnectionState === state && e.ConnectionErrorCode === undefined && e.CreationDate instanceof Date &&
      Math.abs(Date.now() - e.CreationDate) < 3600e3 && e.CloudHsmClusterId === undefined && e.TrustAnchorCertificate === undefined &&
      p && p.Connectivity === 'PUBLIC_ENDPOINT' && p.AccessKeyId === x.accessKey && p.UriEndpoint === ep && p.UriPath === path &&
      p.VpcEndpointServiceName === undefined,
    `${label}: ${JSON.stringify(e)}, want ${id} ${name} ${state} ${ep}${path}`)
    need(!lastWire('DescribeCustomKeyStores').body.toString('utf8').includes(x.secret), `${label}: the proxy secret is on the wire`)
  }

  // ---- create: DISCONNECTED ---------------------------------------------------
  const cs = await kms.send(new CreateCustomKeyStoreCommand(storeInput('js-xks', x.endpoint, x.path)))
  shape(M, 'CreateCustomKeyStore', 'CreateCustomKeyStore EXTERNAL_KEY_STORE', ['CustomKeyStoreId'])
  const id = cs.CustomKeyStoreId
  need(storeIdRE.test(id), `CreateCustomKeyStore: CustomKeyStoreId ${id}, want cks- and 17 hex digits`)
  let [e] = await describe('by id', { CustomKeyStoreId: id }, 1)
  wantStore('new store', e, id, 'js-xks', 'DISCONNECTED', x.endpoint, x.path)
  const [byName] = await describe('by name', { CustomKeyStoreName: 'js-xks' }, 1)
  need(byName.CustomKeyStoreId === id, `DescribeCustomKeyStores by name: ${byName.CustomKeyStoreId}`)
  pass(`CreateCustomKeyStore EXTERNAL_KEY_STORE PUBLIC_ENDPOINT ${x.endpoint}${x.path}: ${id}; DescribeCustomKeyStores by id and by name: DISCONNECTED, CreationDate a Date (${e.CreationDate.toISOString()}), XksProxyConfiguration {Connectivity PUBLIC_ENDPOINT, AccessKeyId the credential's, UriEndpoint, UriPath}, no secret`)
  const inUse = await apiError(kms.send(new CreateCustomKeyStoreCommand(storeInput('js-xks', x.endpoint2, x.path2))), 'CreateCustomKeyStore name in use')
  wantError(inUse, 'CustomKeyStoreNameInUseException', undefined, 400, 'CreateCustomKeyStore of a name in use (message not asserted)', 'CreateCustomKeyStore')
  const uriInUse = await apiError(kms.send(new CreateCustomKeyStoreCommand(storeInput('js-xks-other', x.endpoint, x.path))), 'CreateCustomKeyStore URI in use')
  wantError(uriInUse, 'XksProxyUriInUseException', undefined, 400, 'CreateCustomKeyStore of a proxy URI in use (message not asserted)', 'CreateCustomKeyStore')
  const keyInput = { Origin: 'EXTERNAL_KEY_STORE', CustomKeyStoreId: id, XksKeyId: x.keyID, Description: 'js sdk external key store' }
  const disc = await apiError(kms.send(new CreateKeyCommand(keyInput)), 'CreateKey in a disconnected store')
  wantError(disc, 'CustomKeyStoreInvalidStateException',
    'This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again.',
    400, 'CreateKey in a disconnected external key store', 'CreateKey')

  // ---- connect; a key; the proxy encrypts ------------------------------------
  await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }))
  shape(M, 'ConnectCustomKeyStore', 'ConnectCustomKeyStore')
  ;[e] = await describe('after ConnectCustomKeyStore', { CustomKeyStoreId: id }, 1)
  wantStore('after ConnectCustomKeyStore', e, id, 'js-xks', 'CONNECTED', x.endpoint, x.path)
  pass('ConnectCustomKeyStore: the store is CONNECTED')
  const ck = await kms.send(new CreateKeyCommand(keyInput))
  shape(M, 'CreateKey', 'CreateKey Origin EXTERNAL_KEY_STORE', [...symKeyMeta, 'KeyMetadata.CustomKeyStoreId', 'KeyMetadata.XksKeyConfiguration.Id'])
  const md = ck.KeyMetadata
  need(md.Origin === 'EXTERNAL_KEY_STORE' && md.CustomKeyStoreId === id && md.XksKeyConfiguration?.Id === x.keyID &&
    md.KeySpec === 'SYMMETRIC_DEFAULT' && md.KeyUsage === 'ENCRYPT_DECRYPT' && md.KeyState === 'Enabled' && md.Enabled === true &&
    md.KeyManager === 'CUSTOMER' && md.MultiRegion === false && md.CreationDate instanceof Date &&
    md.Arn === `arn:aws:kms:${region}:${account}:key/${md.KeyId}`, `CreateKey in the external key store: ${JSON.stringify(md)}`)
  const dk = await kms.send(new DescribeKeyCommand({ KeyId: md.KeyId }))
  shape(M, 'DescribeKey', 'DescribeKey of the external key store\'s key', [...symKeyMeta, 'KeyMetadata.CustomKeyStoreId', 'KeyMetadata.XksKeyConfiguration.Id'])
  need(dk.KeyMetadata.CustomKeyStoreId === id && dk.KeyMetadata.XksKeyConfiguration?.Id === x.keyID, `DescribeKey: ${JSON.stringify(dk.KeyMetadata)}`)
  pass(`CreateKey Origin EXTERNAL_KEY_STORE, CustomKeyStoreId, XksKeyId ${x.keyID}: ${md.Arn}, Enabled, XksKeyConfiguration.Id ${x.keyID} (DescribeKey too)`)
  const ctx = { app: 'jsclients', store: 'xks' }
  const pt = new TextEncoder().encode('held by the xks proxy')
  const enc = await kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: pt, EncryptionContext: ctx }))
  shape(M, 'Encrypt', 'Encrypt under the external key store\'s key', ['CiphertextBlob', 'KeyId', 'EncryptionAlgorithm'])
  need(isBytes(enc.CiphertextBlob) && enc.KeyId === md.Arn && enc.EncryptionAlgorithm === 'SYMMETRIC_DEFAULT', `Encrypt: ${JSON.stringify(enc)}`)
  const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctx }))
  shape(M, 'Decrypt', 'Decrypt under the external key store\'s key', ['KeyId', 'Plaintext', 'EncryptionAlgorithm'])
  need(isBytes(dec.Plaintext) && bytesEqual(dec.Plaintext, pt) && dec.KeyId === md.Arn && dec.EncryptionAlgorithm === 'SYMMETRIC_DEFAULT', `Decrypt: ${dec.KeyId}`)
  pass(`Encrypt/Decrypt under the key, with an encryption context: ${enc.CiphertextBlob.length} byte CiphertextBlob (the proxy's AES-GCM inside), Plaintext back as a Uint8Array, KeyId the key ARN`)
  const bad = await apiError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { app: 'jsclients', store: 'other' } })), 'Decrypt another context')
  wantError(bad, 'KMSInvalidStateException',
    'The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.',
    400, 'Decrypt under the external key store\'s key with another encryption context (the proxy refuses its additional data)', 'Decrypt')

  // ---- rename, delete the key, disconnect --------------------------------------
  await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, NewCustomKeyStoreName: 'js-xks-renamed' }))
  shape(M, 'UpdateCustomKeyStore', 'UpdateCustomKeyStore')
  ;[e] = await describe('by the new name', { CustomKeyStoreName: 'js-xks-renamed' }, 1)
  wantStore('after UpdateCustomKeyStore', e, id, 'js-xks-renamed', 'CONNECTED', x.endpoint, x.path)
  pass('UpdateCustomKeyStore NewCustomKeyStoreName js-xks-renamed (connected): DescribeCustomKeyStores by the new name lists the store, CONNECTED')
  const sd = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 }))
  shape(M, 'ScheduleKeyDeletion', 'ScheduleKeyDeletion of the external key store\'s key', ['KeyId', 'DeletionDate', 'KeyState', 'PendingWindowInDays'])
  need(sd.KeyId === md.Arn && sd.KeyState === 'PendingDeletion' && sd.PendingWindowInDays === 7 && sd.DeletionDate instanceof Date, `ScheduleKeyDeletion: ${JSON.stringify(sd)}`)
  const delConn = await apiError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id })), 'DeleteCustomKeyStore connected')
  wantError(delConn, 'CustomKeyStoreInvalidStateException', undefined, 400, 'DeleteCustomKeyStore of a connected store (message not asserted)', 'DeleteCustomKeyStore')
  await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }))
  shape(M, 'DisconnectCustomKeyStore', 'DisconnectCustomKeyStore')
  ;[e] = await describe('after DisconnectCustomKeyStore', { CustomKeyStoreId: id }, 1)
  wantStore('after DisconnectCustomKeyStore', e, id, 'js-xks-renamed', 'DISCONNECTED', x.endpoint, x.path)
  const pd = await kms.send(new DescribeKeyCommand({ KeyId: md.KeyId }))
  shape(M, 'DescribeKey', 'DescribeKey after DisconnectCustomKeyStore', [...symKeyMeta, 'KeyMetadata.DeletionDate'])
  need(pd.KeyMetadata.KeyState === 'PendingDeletion' && pd.KeyMetadata.DeletionDate instanceof Date && pd.KeyMetadata.Enabled === false,
    `key pending deletion in a disconnected store: ${JSON.stringify(pd.KeyMetadata)}`)
  pass(`ScheduleKeyDeletion (7 days), DisconnectCustomKeyStore: the store DISCONNECTED, DescribeKey: the key still PendingDeletion (DeletionDate ${pd.KeyMetadata.DeletionDate.toISOString()})`)
  const hasKeys = await apiError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id })), 'DeleteCustomKeyStore with a key')
  wantError(hasKeys, 'CustomKeyStoreHasCMKsException', undefined, 400, 'DeleteCustomKeyStore of a store with a key pending deletion (message not asserted)', 'DeleteCustomKeyStore')

  // ---- a second store, never connected: deleted ---------------------------------
  const cs2 = await kms.send(new CreateCustomKeyStoreCommand(storeInput('js-xks-2', x.endpoint2, x.path2)))
  shape(M, 'CreateCustomKeyStore', 'CreateCustomKeyStore (second)', ['CustomKeyStoreId'])
  const id2 = cs2.CustomKeyStoreId
  need(storeIdRE.test(id2) && id2 !== id, `second CustomKeyStoreId ${id2}`)
  const [e2] = await describe('second store', { CustomKeyStoreId: id2 }, 1)
  wantStore('second store', e2, id2, 'js-xks-2', 'DISCONNECTED', x.endpoint2, x.path2)
  await describe('(all, 2 stores)', {}, 2)
  await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id2 }))
  shape(M, 'DeleteCustomKeyStore', 'DeleteCustomKeyStore')
  const gone = await apiError(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id2 })), 'DescribeCustomKeyStores of the deleted store')
  wantError(gone, 'CustomKeyStoreNotFoundException', `Custom key store '${id2}' does not exist.`, 400, 'DescribeCustomKeyStores of the deleted store', 'DescribeCustomKeyStores')
  const [left] = await describe('after the deletion', {}, 1)
  need(left.CustomKeyStoreId === id, `DescribeCustomKeyStores after the deletion: ${left.CustomKeyStoreId}, want ${id}`)
  pass(`a second store (${x.endpoint2}${x.path2}, never connected): CreateCustomKeyStore ${id2}, DescribeCustomKeyStores lists 2, DeleteCustomKeyStore, then it is not found and 1 store is left (${id}, its key pending deletion)`)
}

// ---- 4. JS SDK v3 Secrets Manager -------------------------------------------
async function jsSM () {
  console.log('== AWS SDK for JavaScript v3: Secrets Manager')
  const M = smModel
  const str = await sm.send(new CreateSecretCommand({ Name: 'js/string', SecretString: '{"user":"app","pass":"s3cr\u00eat"}', Description: 'js string' }))
  shape(M, 'CreateSecret', 'CreateSecret string', ['ARN', 'Name', 'VersionId'])
  need(/^arn:aws:secretsmanager:us-east-1:123456789012:secret:js\/string-[A-Za-z0-9]{6}$/.test(str.ARN), `CreateSecret: ARN ${str.ARN}`)
  const bin = Uint8Array.from([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f, 10, 13, 0])
  const b = await sm.send(new CreateSecretCommand({ Name: 'js/binary', SecretBinary: bin }))
  shape(M, 'CreateSecret', 'CreateSecret binary', ['ARN', 'Name', 'VersionId'])
  pass(`CreateSecret string and binary: ${str.ARN}, ${b.ARN}`)

  const gs = await sm.send(new GetSecretValueCommand({ SecretId: 'js/string' }))
  shape(M, 'GetSecretValue', 'GetSecretValue string', ['ARN', 'Name', 'VersionId', 'SecretString', 'VersionStages', 'CreatedDate'])
  need(gs.SecretString === '{"user":"app","pass":"s3cr\u00eat"}' && gs.SecretBinary === undefined && gs.CreatedDate instanceof Date, 'GetSecretValue string: value or types differ')
  need(JSON.stringify(gs.VersionStages) === '["AWSCURRENT"]' && gs.VersionId === str.VersionId, `GetSecretValue: stages ${gs.VersionStages}`)
  const gb = await sm.send(new GetSecretValueCommand({ SecretId: b.ARN }))
  shape(M, 'GetSecretValue', 'GetSecretValue binary', ['ARN', 'Name', 'VersionId', 'SecretBinary', 'VersionStages', 'CreatedDate'])
  need(isBytes(gb.SecretBinary) && bytesEqual(gb.SecretBinary, bin) && gb.SecretString === undefined, `GetSecretValue binary: ${gb.SecretBinary}`)
  pass('GetSecretValue: SecretString back; SecretBinary back as the same 10 bytes (Uint8Array); CreatedDate a Date; VersionStages [AWSCURRENT]')

  const pv = await sm.send(new PutSecretValueCommand({ SecretId: 'js/string', SecretString: 'v2', ClientRequestToken: '00000000-0000-4000-8000-000000000002' }))
  shape(M, 'PutSecretValue', 'PutSecretValue', ['ARN', 'Name', 'VersionId', 'VersionStages'])
  need(pv.VersionId === '00000000-0000-4000-8000-000000000002' && JSON.stringify(pv.VersionStages) === '["AWSCURRENT"]', `PutSecretValue: ${JSON.stringify(pv)}`)
  const prev = await sm.send(new GetSecretValueCommand({ SecretId: 'js/string', VersionStage: 'AWSPREVIOUS' }))
  need(prev.VersionId === str.VersionId, 'PutSecretValue: AWSPREVIOUS is not the first version')
  pass('PutSecretValue with ClientRequestToken: new AWSCURRENT, first version now AWSPREVIOUS')

  for (let i = 0; i < 5; i++) await sm.send(new CreateSecretCommand({ Name: `js/page/${i}`, SecretString: `p${i}` }))
  const names = new Set(); let token; let pages = 0
  do {
    const page = await sm.send(new ListSecretsCommand({ MaxResults: 2, NextToken: token }))
    shape(M, 'ListSecrets', `ListSecrets page ${pages + 1}`, ['SecretList'])
    need(page.SecretList.length <= 2, 'ListSecrets: more than MaxResults')
    for (const s of page.SecretList) { need(!names.has(s.Name), `ListSecrets: ${s.Name} twice`); names.add(s.Name) }
    token = page.NextToken; pages++
    need(pages < 100, 'ListSecrets: more than 100 pages')
  } while (token)
  let viaPaginator = 0
  for await (const p of paginateListSecrets({ client: sm, pageSize: 3 }, {})) viaPaginator += p.SecretList.length
  need(names.size === 7 && viaPaginator === 7, `ListSecrets: ${names.size} by hand, ${viaPaginator} by paginator, want 7`)
  pass(`ListSecrets MaxResults 2: 7 secrets in ${pages} pages (NextToken), paginateListSecrets agrees`)

  // SecretBinary bounds (model: SecretBinaryType max 65536 bytes).
  const big = randomBytes(65536)
  await sm.send(new CreateSecretCommand({ Name: 'js/big', SecretBinary: big }))
  need(bytesEqual((await sm.send(new GetSecretValueCommand({ SecretId: 'js/big' }))).SecretBinary, big), 'SecretBinary 65536: differs')
  const tooBig = await apiError(sm.send(new CreateSecretCommand({ Name: 'js/too-big', SecretBinary: randomBytes(65537) })), 'CreateSecret 65537')
  wantError(tooBig, 'ValidationException', undefined, 400, 'CreateSecret with a 65537-byte SecretBinary (65536 round-trips; message not asserted)', 'CreateSecret')

  const ds = await sm.send(new DescribeSecretCommand({ SecretId: 'js/string' }))
  shape(M, 'DescribeSecret', 'DescribeSecret', ['ARN', 'Name', 'Description', 'LastChangedDate', 'VersionIdsToStages', 'CreatedDate'])
  need(ds.CreatedDate instanceof Date && ds.LastChangedDate instanceof Date, 'DescribeSecret: dates not Dates')
  need(JSON.stringify(ds.VersionIdsToStages[str.VersionId]) === '["AWSPREVIOUS"]', `DescribeSecret: VersionIdsToStages ${JSON.stringify(ds.VersionIdsToStages)}`)
  pass('DescribeSecret: Description, CreatedDate/LastChangedDate Dates, VersionIdsToStages with AWSCURRENT and AWSPREVIOUS')

  const bg = await sm.send(new BatchGetSecretValueCommand({ SecretIdList: ['js/string', b.ARN, 'js/nope'] }))
  shape(M, 'BatchGetSecretValue', 'BatchGetSecretValue', ['SecretValues', 'Errors'])
  need(bg.SecretValues.length === 2, `BatchGetSecretValue: ${bg.SecretValues.length} values`)
  const bgBin = bg.SecretValues.find((v) => v.ARN === b.ARN)
  need(bgBin && isBytes(bgBin.SecretBinary) && bytesEqual(bgBin.SecretBinary, bin), 'BatchGetSecretValue: binary differs')
  need(bg.Errors.length === 1 && bg.Errors[0].SecretId === 'js/nope' && bg.Errors[0].ErrorCode === 'ResourceNotFoundException', `BatchGetSecretValue Errors ${JSON.stringify(bg.Errors)}`)
  if (bg.Errors[0].Message !== "Secrets Manager can't find the specified secret.") deviation(`BatchGetSecretValue: Errors[0].Message ${JSON.stringify(bg.Errors[0].Message)}`)
  const bgf = await sm.send(new BatchGetSecretValueCommand({ Filters: [{ Key: 'name', Values: ['js/page/'] }], MaxResults: 2 }))
  shape(M, 'BatchGetSecretValue', 'BatchGetSecretValue Filters', ['SecretValues', 'NextToken'])
  pass(`BatchGetSecretValue by ids: 2 values (binary the same bytes), Errors [{SecretId js/nope, ResourceNotFoundException}]; by Filters MaxResults 2: ${bgf.SecretValues.length} values + NextToken`)

  const del = await sm.send(new DeleteSecretCommand({ SecretId: 'js/page/0', RecoveryWindowInDays: 7 }))
  shape(M, 'DeleteSecret', 'DeleteSecret window 7', ['ARN', 'Name', 'DeletionDate'])
  const days = (del.DeletionDate - Date.now()) / 86400e3
  need(del.DeletionDate instanceof Date && days > 6.9 && days < 7.1, `DeleteSecret: DeletionDate ${del.DeletionDate}`)
  const gd = await apiError(sm.send(new GetSecretValueCommand({ SecretId: 'js/page/0' })), 'GetSecretValue deleted')
  wantError(gd, 'InvalidRequestException', "You can't perform this operation on the secret because it was marked for deletion.", 400, 'GetSecretValue of a secret scheduled for deletion', 'GetSecretValue')
  const dd = await sm.send(new DescribeSecretCommand({ SecretId: 'js/page/0' }))
  shape(M, 'DescribeSecret', 'DescribeSecret scheduled', ['DeletedDate'])
  const d30 = await sm.send(new DeleteSecretCommand({ SecretId: 'js/page/2' }))
  shape(M, 'DeleteSecret', 'DeleteSecret default window', ['ARN', 'Name', 'DeletionDate'])
  const days30 = (d30.DeletionDate - Date.now()) / 86400e3
  need(days30 > 29.9 && days30 < 30.1, `DeleteSecret default: DeletionDate ${d30.DeletionDate}`)
  const fd = await sm.send(new DeleteSecretCommand({ SecretId: 'js/page/1', ForceDeleteWithoutRecovery: true }))
  shape(M, 'DeleteSecret', 'DeleteSecret force', ['ARN', 'Name', 'DeletionDate'])
  need(fd.DeletionDate instanceof Date, 'DeleteSecret force: no DeletionDate')
  pass(`DeleteSecret RecoveryWindowInDays 7: DeletionDate in ${days.toFixed(2)} days, DescribeSecret DeletedDate ${dd.DeletedDate?.toISOString()}; no window: ${days30.toFixed(2)} days (the default 30); ForceDeleteWithoutRecovery: DeletionDate ${fd.DeletionDate.toISOString()}`)

  const nf = await apiError(sm.send(new GetSecretValueCommand({ SecretId: 'js/page/1' })), 'GetSecretValue of a force-deleted secret')
  wantError(nf, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.", 400, 'GetSecretValue of a force-deleted secret', 'GetSecretValue')
  const nf2 = await apiError(sm.send(new DescribeSecretCommand({ SecretId: 'js/never' })), 'DescribeSecret unknown')
  wantError(nf2, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.", 400, 'DescribeSecret of an unknown secret', 'DescribeSecret')
}

// ---- strict auth: requests the JS SDK signs wrongly -------------------------
// AWS's texts (the same e2e/auth_strict_test.go and e2e/smoke/smoke.py assert).
const signatureMismatch = 'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'
const invalidToken = 'The security token included in the request is invalid.'

// wantAuthError checks an authentication error: the SDK's name, HTTP 400,
// $fault client, a request id, and a message starting with prefix.
function wantAuthError (e, name, prefix, label, op, extra = '') {
  need(e.name === name, `${label}: error ${e.name}: ${e.message}, want ${name}`)
  need(e.$metadata?.httpStatusCode === 400 && e.$fault === 'client', `${label}: HTTP ${e.$metadata?.httpStatusCode}, $fault ${e.$fault}`)
  const w = lastWire(op)
  need(e.$metadata?.requestId && e.$metadata.requestId === w.headers['x-amzn-requestid'], `${label}: $metadata.requestId ${e.$metadata?.requestId}`)
  if (!String(e.message).startsWith(prefix)) deviation(`${label}: ${name} message ${JSON.stringify(e.message)}, AWS's starts ${JSON.stringify(prefix)}`)
  const type = String(JSON.parse(w.body.toString('utf8')).__type || '').split('#').pop()
  if (type !== name) deviation(`${label}: __type ${JSON.stringify(type)}, want ${name}`)
  // A mismatch quotes the canonical request: its second-to-last line is the
  // headers the SDK signed.
  const canon = /should have been\n'([^']*)'/.exec(String(e.message))
  const signed = canon ? `; the SDK signed ${canon[1].split('\n').at(-2)}` : ''
  const msg = String(e.message).split('\n')[0] + (String(e.message).includes('\n') ? ' [...the canonical request and string to sign]' : '')
  pass(`${label}: ${name} (HTTP 400) ${JSON.stringify(msg)}, $metadata.requestId ${e.$metadata.requestId}${signed}${extra}`)
}

async function strict () {
  console.log('== strict auth: requests the JS SDK v3 signs wrongly')
  const as = (over) => ({ ...clientConfig, ...over })
  const wrong = as({ credentials: { ...credentials, secretAccessKey: credentials.secretAccessKey + '-wrong' } })
  const mismatch = `${signatureMismatch}\n\nThe Canonical String for this request should have been\n'POST\n/\n\n`
  wantAuthError(await apiError(new KMSClient(wrong).send(new ListKeysCommand({})), 'wrong secret'),
    'InvalidSignatureException', mismatch, 'KMS ListKeys with a wrong secret key', 'ListKeys')
  wantAuthError(await apiError(new SecretsManagerClient(wrong).send(new ListSecretsCommand({})), 'wrong secret'),
    'InvalidSignatureException', mismatch, 'Secrets Manager ListSecrets with a wrong secret key', 'ListSecrets')
  const unknown = as({ credentials: { accessKeyId: 'AKIAUNKNOWN000000001', secretAccessKey: credentials.secretAccessKey } })
  wantAuthError(await apiError(new KMSClient(unknown).send(new ListKeysCommand({})), 'unknown key'),
    'UnrecognizedClientException', invalidToken, 'KMS ListKeys with an unknown access key', 'ListKeys')
  wantAuthError(await apiError(new SecretsManagerClient(unknown).send(new ListSecretsCommand({})), 'unknown key'),
    'UnrecognizedClientException', invalidToken, 'Secrets Manager ListSecrets with an unknown access key', 'ListSecrets')
  // A key works in its principal's partition only: the aws user's key
  // signed for cn-north-1, and the aws-cn user's (KF_CN_ACCESS_KEY_ID, the
  // same secret) for us-east-1, are keys AWS does not know there.
  if (process.env.KF_CN_ACCESS_KEY_ID) {
    wantAuthError(await apiError(new KMSClient(as({ region: 'cn-north-1' })).send(new ListKeysCommand({})), 'aws key in cn-north-1'),
      'UnrecognizedClientException', invalidToken, 'KMS ListKeys in cn-north-1 with the aws partition\'s key', 'ListKeys')
    const cn = as({ credentials: { ...credentials, accessKeyId: process.env.KF_CN_ACCESS_KEY_ID } })
    wantAuthError(await apiError(new SecretsManagerClient(cn).send(new ListSecretsCommand({})), 'aws-cn key in us-east-1'),
      'UnrecognizedClientException', invalidToken, 'Secrets Manager ListSecrets in us-east-1 with the aws-cn partition\'s key', 'ListSecrets')
  }
  // systemClockOffset: the SDK signs with its clock moved by that many ms
  // (and, after a clock-skew error, corrects it from the response's Date
  // header: a fresh client each time).
  for (const min of [-20, 20]) {
    const prefix = min < 0 ? 'Signature expired: ' : 'Signature not yet current: '
    const skewed = as({ systemClockOffset: min * 60e3 })
    wantAuthError(await apiError(new KMSClient(skewed).send(new ListKeysCommand({})), 'skewed clock'),
      'InvalidSignatureException', prefix, `KMS ListKeys signed with systemClockOffset ${min} min`, 'ListKeys')
    wantAuthError(await apiError(new SecretsManagerClient(skewed).send(new ListSecretsCommand({})), 'skewed clock'),
      'InvalidSignatureException', prefix, `Secrets Manager ListSecrets signed with systemClockOffset ${min} min`, 'ListSecrets')
  }
  await kms.send(new ListKeysCommand({ Limit: 1 }))
  pass('the same calls signed with the right key on the right clock are accepted (as is everything below)')
  if (process.env.KF_ROLE_ACCESS_KEY_ID) await sessionToken()
}

// sent(op) describes the last request of op: whether it carried
// X-Amz-Security-Token (the role session's, when KF_ROLE_SESSION_TOKEN) and
// the headers the SDK signed.
function sent (op) {
  const w = lastWire(op)
  const signed = (w.signed || '').split(';')
  const other = w.token && w.token !== process.env.KF_ROLE_SESSION_TOKEN ? ', not the session\'s' : ''
  return { w, signed, tokenSigned: signed.includes('x-amz-security-token'), text: `X-Amz-Security-Token ${w.token ? `sent (${w.token.length} chars${other})` : 'not sent'}, the SDK signed ${w.signed}` }
}

// sessionToken checks temporary credentials (a role session's access key,
// secret and session token, as apps on EC2, ECS or Lambda get them): with
// the token the calls pass as the session; without it, with another token,
// and with the token on the user's long-term key they are refused with
// AWS's UnrecognizedClientException.
async function sessionToken () {
  console.log('== strict auth: a role session\'s temporary credentials (session token) as the JS SDK v3 signs them')
  const role = {
    accessKeyId: process.env.KF_ROLE_ACCESS_KEY_ID,
    secretAccessKey: process.env.KF_ROLE_SECRET_ACCESS_KEY,
    sessionToken: process.env.KF_ROLE_SESSION_TOKEN,
  }
  const as = (creds) => ({ ...clientConfig, credentials: creds })
  const rk = new KMSClient(as(role))
  const rsm = new SecretsManagerClient(as(role))
  const lk = await rk.send(new ListKeysCommand({}))
  let s = sent('ListKeys')
  need(s.w.token === role.sessionToken && s.tokenSigned, `KMS ListKeys with the session token: ${s.text}`)
  pass(`KMS ListKeys with the session token: ${lk.Keys.length} keys; ${s.text}`)
  const ls = await rsm.send(new ListSecretsCommand({}))
  s = sent('ListSecrets')
  need(s.w.token === role.sessionToken && s.tokenSigned, `Secrets Manager ListSecrets with the session token: ${s.text}`)
  pass(`Secrets Manager ListSecrets with the session token: ${ls.SecretList.length} secrets; ${s.text}`)
  const key = await rk.send(new CreateKeyCommand({ Description: 'interop: created by a role session' }))
  const plain = randomBytes(32)
  const enc = await rk.send(new EncryptCommand({ KeyId: key.KeyMetadata.KeyId, Plaintext: plain, EncryptionContext: { via: 'session-token' } }))
  const dec = await rk.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { via: 'session-token' } }))
  need(Buffer.from(dec.Plaintext).equals(plain) && dec.KeyId === key.KeyMetadata.Arn, `Decrypt with the session token: plaintext or KeyId ${dec.KeyId} wrong`)
  pass(`CreateKey, Encrypt, Decrypt with the session token: ${key.KeyMetadata.KeyId}, ${enc.CiphertextBlob.length} byte CiphertextBlob decrypts to the 32 bytes`)

  const refused = async (creds, label) => {
    wantAuthError(await apiError(new KMSClient(as(creds)).send(new ListKeysCommand({})), label),
      'UnrecognizedClientException', invalidToken, `KMS ListKeys ${label}`, 'ListKeys', `; ${sent('ListKeys').text}`)
    wantAuthError(await apiError(new SecretsManagerClient(as(creds)).send(new ListSecretsCommand({})), label),
      'UnrecognizedClientException', invalidToken, `Secrets Manager ListSecrets ${label}`, 'ListSecrets', `; ${sent('ListSecrets').text}`)
  }
  await refused({ accessKeyId: role.accessKeyId, secretAccessKey: role.secretAccessKey }, 'with the session\'s key and no session token')
  await refused({ ...role, sessionToken: randomBytes(456).toString('base64') }, 'with the session\'s key and another session token')
  await refused({ ...credentials, sessionToken: role.sessionToken }, 'with the user\'s long-term key and the session token')
}

const v2 = () => v2Step({ endpoint, region, account, credentials, wire, shape, pass, need, fail, deviation, kmsModel, smModel })
const steps = { strict, esdk, kms: jsKms, import: jsImport, sm: jsSM, v2, xks: jsXks }
let failed = false
try {
  const defaultSteps = (process.env.KF_STRICT === '1' ? 'strict,esdk,kms,import,sm,v2' : 'esdk,kms,import,sm,v2') +
    (process.env.KF_XKS_ENDPOINT ? ',xks' : '')
  for (const name of (process.env.KF_STEPS || defaultSteps).split(',')) await steps[name]()
} catch (e) {
  if (e instanceof CheckFailed) console.log(`FAIL: ${e.message}`)
  else console.log(`FAIL: unexpected error: ${e.name}: ${e.message}\n${e.stack}`)
  failed = true
} finally {
  requestHandler.destroy()
  // KF_DUMP=FILE writes every response (operation, status, headers, body) as
  // JSON lines, to read the wire by hand.
  if (process.env.KF_DUMP) {
    writeFileSync(process.env.KF_DUMP, wire.map((w) => JSON.stringify({
      target: w.target, status: w.status, headers: w.headers,
      body: w.body.length > 4096 ? `${w.body.length} bytes` : w.body.toString('utf8'),
    })).join('\n') + '\n')
  }
}
if (failed) process.exit(1)
const ops = new Set(wire.map((w) => w.target))
for (const w of wire) {
  if (w.headers['content-type'] !== 'application/x-amz-json-1.1' || !w.headers['x-amzn-requestid']) {
    deviation(`${w.target} HTTP ${w.status}: Content-Type ${JSON.stringify(w.headers['content-type'])}, x-amzn-RequestId ${JSON.stringify(w.headers['x-amzn-requestid'])}`)
  }
}
pass(`${wire.length} responses to ${ops.size} operations (Content-Type and x-amzn-RequestId checked on each); ${shapesChecked} successful responses checked member by member against the botocore models${deviations.length ? '' : ', no difference'}`)
if (deviations.length) {
  console.log(`== ${deviations.length} deviation(s) from AWS (every other check passed)`)
  process.exit(3)
}
// (jsclients.sh prints "== all checks passed" after its own last checks.)
