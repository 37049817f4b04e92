%%% @doc The fan-out relay of this node.
%%%
%%% A C emitter that fans an event out to the members of
%%% `{Store, Topic, subscribers}' sends one message per subscriber to nodes
%%% without a relay. To a node that runs this relay it sends one
%%% `{'$reckon_relay', Group, Msg}' per event instead, and the relay sends
%%% `Msg' to every local member of `Group' in the scope: the node decodes
%%% one distribution message per event rather than one per subscriber, and
%%% local sends are cheap. Events from one emitter to one subscriber keep
%%% their order (one emitter uses one path to a node while its relay
%%% lives).
%%%
%%% The relay joins the group `{'$reckon_cnode', relays}' of the scope,
%%% which is how C nodes find it. When it dies, C nodes see it leave and
%%% send directly again; events that were still in its mailbox are lost
%%% with it (the supervisor restarts it).
%%%
%%% The relay also watches this node's nodeups: when a node connects here
%%% (a new node joining the cluster through this one), it tells every C
%%% node connected to this node (`{reckon_cnode_cluster, CNode} !
%%% {'$reckon_cnode_nodeup', Node}'), which then asks this node for its
%%% connections at once instead of at its next periodic round, and so
%%% connects to the new node and sees its members as soon as `pg' does.
%%%
%%% It is started by {@link reckon_cnode_sup} unless the application env
%%% `relay' is `false'. With env `mode' set to `relay', the application
%%% runs the scope and the relay only (no C node is attached): that is how
%%% a node that only hosts subscribers takes part.
%%% @end
-module(reckon_cnode_relay).
-behaviour(gen_server).

-export([start_link/1, group/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(GROUP, {'$reckon_cnode', relays}).

%% @doc Starts the relay for the `pg' scope `Scope', registered as
%% `reckon_cnode_relay'.
-spec start_link(atom()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Scope) when is_atom(Scope) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Scope, []).

%% @doc The `pg' group relays join, in the scope of the emitter groups.
-spec group() -> {'$reckon_cnode', relays}.
group() ->
    ?GROUP.

%% @private
-spec init(atom()) -> {ok, atom()}.
init(Scope) ->
    %% A burst of relayed events must not make every garbage collection of
    %% the relay copy its whole mailbox.
    process_flag(message_queue_data, off_heap),
    ok = pg:join(Scope, ?GROUP, self()),
    ok = net_kernel:monitor_nodes(true),
    {ok, Scope}.

%% @private
-spec handle_call(term(), gen_server:from(), atom()) -> {reply, {error, badarg}, atom()}.
handle_call(_Request, _From, Scope) ->
    {reply, {error, badarg}, Scope}.

%% @private
-spec handle_cast(term(), atom()) -> {noreply, atom()}.
handle_cast(_Msg, Scope) ->
    {noreply, Scope}.

%% @private
-spec handle_info(term(), atom()) -> {noreply, atom()}.
%% Only the one shape C emitters send: a peer cannot make the relay post
%% anything else, or to any other group.
handle_info({'$reckon_relay', {Store, Topic, subscribers} = Group, {events, Events} = Msg}, Scope)
  when is_atom(Store), is_binary(Topic), is_list(Events) ->
    deliver(pg:get_local_members(Scope, Group), Msg),
    {noreply, Scope};
handle_info({nodeup, Node}, Scope) ->
    %% C nodes are hidden; a hidden node that is not one has no process of
    %% that name, and the message is dropped there
    _ = [erlang:send({reckon_cnode_cluster, H}, {'$reckon_cnode_nodeup', Node}, [noconnect])
         || H <- nodes(hidden)],
    {noreply, Scope};
handle_info(_Other, Scope) ->
    {noreply, Scope}.

deliver([Pid | Rest], Msg) ->
    Pid ! Msg,
    deliver(Rest, Msg);
deliver([], _Msg) ->
    ok.
