import { LightningElement, api } from 'lwc';
import sessionKey from '@salesforce/apex/RSBridgeActions.sessionKey';

// A key for the Case from rsbridge's actions API (through Apex and the Named Credential).
// "E-mail" repeats the request with the same request id: rsbridge answers the same key and
// e-mails it once, instead of making a second key.
export default class RsbridgeSessionKey extends LightningElement {
    @api recordId;
    answer;
    error;
    busy = false;
    requestId;

    get emailStatus() {
        const email = this.answer && this.answer.email;
        if (!email) {
            return undefined;
        }
        return email.sent ? `E-mailed to ${email.to}.` : `Not e-mailed: ${email.error}`;
    }

    generate() {
        this.requestId = newRequestId();
        return this.call(false);
    }

    emailKey() {
        return this.call(true);
    }

    async call(email) {
        this.busy = true;
        this.error = undefined;
        try {
            const body = await sessionKey({
                caseId: this.recordId,
                email,
                requestId: this.requestId
            });
            this.answer = JSON.parse(body);
        } catch (failure) {
            this.error = messageOf(failure);
        } finally {
            this.busy = false;
        }
    }
}

function newRequestId() {
    return `sf-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
}

function messageOf(failure) {
    return (failure && failure.body && failure.body.message) || 'rsbridge did not answer.';
}
